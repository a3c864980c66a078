"""Runs jobs in a process pool, reusing every run already in the cache (JSON lines): each notebook's module
says how to run its kind of job and what makes two jobs the same."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from reference.adaptation import ADAPT_KEYS, ADAPT_KIND, run_adapt_job
from reference.finetuning import FINETUNE_KEYS, FINETUNE_KINDS, run_finetune_job
from reference.robustness import ROBUST_KEYS, ROBUST_KIND, run_robust_job


def _init_worker(threads: int = 1) -> None:
    import torch

    torch.set_num_threads(threads)
    os.environ["DATL_QUIET"] = "1"


def run_job(job: dict) -> dict:
    """One run described by ``job`` (a plain dict, so it can cross process boundaries)."""
    if job.get("kind") in FINETUNE_KINDS:
        return {**run_finetune_job(job), **job}  # the job's own fields win: they are its cache key
    if job.get("kind") == ADAPT_KIND:
        return {**run_adapt_job(job), **job}
    if job.get("kind") == ROBUST_KIND:
        return {**run_robust_job(job), **job}
    from datl_helpers import augment, data, transfer

    target = data.load_domain(job["target"])
    config = transfer.TransferConfig(steps=job["steps"], batch_size=job["batch_size"])
    aug = None
    if job["strength"] > 0:
        aug = augment.BatchAugment(job["strength"], job["kinds"], seed=job["seed"])
    labels = None if job["labels_per_class"] == "all" else job["labels_per_class"]
    row = transfer.run_transfer(target, job["method"], labels, seed=job["seed"], config=config, device="cpu",
                                transform=aug)
    return {**job, **row}


def job_key(job: dict) -> str:
    if job.get("kind") in FINETUNE_KINDS:
        return json.dumps({k: job[k] for k in FINETUNE_KEYS}, sort_keys=True)
    if job.get("kind") == ADAPT_KIND:  # target_labels only where a run has it (the semi-supervised variant)
        return json.dumps({k: job[k] for k in (*ADAPT_KEYS, "target_labels") if k in job}, sort_keys=True)
    if job.get("kind") == ROBUST_KIND:
        return json.dumps({k: job[k] for k in ROBUST_KEYS}, sort_keys=True)
    keys = ("target", "method", "labels_per_class", "kinds", "strength", "steps", "batch_size", "seed")
    return json.dumps([job[k] for k in keys])


class Runner:
    """Runs jobs in a process pool, reusing every run already in the cache."""

    def __init__(self, cache: Path, workers: int, threads: int | None = None):
        self.cache, self.workers = cache, workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)  # torch threads per worker
        self.done: dict[str, dict] = {}
        if cache.exists():
            for line in cache.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.done[job_key(row)] = row

    def reuse(self, rows: list[dict]) -> int:
        """Take runs measured before (e.g. by the shipped reference) as done, in memory only: the
        cache file keeps what this machine measured. Returns how many were new."""
        fresh = {job_key(r): r for r in rows if job_key(r) not in self.done}
        self.done.update(fresh)
        return len(fresh)

    def run(self, jobs: list[dict], need: tuple[str, ...] = ()) -> list[dict]:
        """Every job's row, running the jobs not done yet (or done without one of the keys ``need``)."""
        todo = {job_key(j): j for j in jobs
                if job_key(j) not in self.done or any(k not in self.done[job_key(j)] for k in need)}
        if todo:
            print(f"  {len(todo)} runs to do ({len(jobs) - len(todo)} from the cache)", flush=True)
            start = time.perf_counter()
            with ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(self.threads,)) as pool:
                futures = [pool.submit(run_job, j) for j in todo.values()]
                for i, fut in enumerate(as_completed(futures), 1):
                    row = fut.result()
                    self.done[job_key(row)] = row
                    self.cache.parent.mkdir(parents=True, exist_ok=True)
                    with self.cache.open("a") as f:
                        f.write(json.dumps(row) + "\n")
                    what = f"{row['name']} ({row['kind']})" if "kind" in row else f"{row['method']} {row['augment']}"
                    labels = f" {row['labels_per_class']}/class" if "labels_per_class" in row else ""
                    score = row.get("target_accuracy", row.get("accuracy", row.get("cv_accuracy")))
                    print(f"  [{i}/{len(todo)} {time.perf_counter() - start:.0f} s] {what}{labels}"
                          f" {row['steps']} steps seed {row['seed']}: {100 * score:.1f} %", flush=True)
        return [{**self.done[job_key(j)], **j} if j.get("kind") in (*FINETUNE_KINDS, ADAPT_KIND, ROBUST_KIND) else
                {k: v for k, v in self.done[job_key(j)].items() if k != "kinds_name"} | {"kinds": j["kinds_name"],
                "augment": j["augment"]} for j in jobs]
