"""A small reader of R's binary serialization format, enough for data frames of text and numbers.

R packages keep their data sets in a *lazy-load database*: ``Rdata.rdx`` (a gzip'd serialized index:
object name -> offset and length) and ``Rdata.rdb`` (the objects, each a 4-byte length then a
compressed stream holding one serialized object). Both use R's XDR serialization (``X\\n``, versions 2 and 3).
This module reads them without R: vectors (logical, integer, double, character), lists, pairlists
of attributes, symbols and references. Environments, closures and bytecode are refused, since a
data set does not need them. Used by :mod:`datl_helpers.data.text_domains` for the ``food`` domain.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from datl_helpers.core.errors import BadDataError

NA_INTEGER = -(2**31)
# SEXP types (R Internals, "Serialization formats")
NILSXP, SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 0, 1, 2, 9, 10, 13, 14, 16, 19
REFSXP, NILVALUE_SXP, ALTREP_SXP = 255, 254, 238
SPECIAL_ENVS = {242, 241, 253, 252, 251, 247, 250}  # empty, base, global env, unbound, missing, namespace


@dataclass
class RObject:
    """An R value: ``value`` (a Python list for vectors, a dict for attributes' pairlists) and ``attributes``."""

    type: int
    value: object
    attributes: dict = field(default_factory=dict)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos, self.refs = data, 0, []

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def length(self) -> int:
        n = self.int()
        return (self.int() << 32) + self.int() if n == -1 else n

    def header(self) -> None:
        if self.data[:2] != b"X\n":
            raise BadDataError("not an R XDR serialization (expected it to start with 'X\\n')")
        self.pos = 2
        version = self.int()
        self.int(), self.int()  # writer's R version, minimal reader version
        if version == 3:
            n = self.int()  # then the native encoding's name
            self.pos += n
        elif version != 2:
            raise BadDataError(f"R serialization version {version} is not supported (2 or 3 are)")

    def item(self) -> RObject | None:
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, bool(flags & (1 << 9)), bool(flags & (1 << 10))
        if kind == NILVALUE_SXP or kind in SPECIAL_ENVS:
            return None
        if kind == REFSXP:
            index = flags >> 8 or self.int()
            return self.refs[index - 1]
        if kind == SYMSXP:
            sym = RObject(SYMSXP, self.item().value)
            self.refs.append(sym)
            return sym
        if kind == LISTSXP:  # a pairlist: (attributes), (tag), head, tail
            attrs = self.attributes() if has_attr else {}
            tag = self.item() if has_tag else None
            head = self.item()
            tail = self.item()
            pairs = {(tag.value if tag else len(tail.value if tail else {})): head}
            pairs.update(tail.value if tail else {})
            return RObject(LISTSXP, pairs, attrs)
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return RObject(CHARSXP, None)
            text = self.data[self.pos : self.pos + n].decode("utf-8", errors="replace")
            self.pos += n
            return RObject(CHARSXP, text)
        if kind in (LGLSXP, INTSXP):
            n = self.length()
            value = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
        elif kind == REALSXP:
            n = self.length()
            value = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        elif kind == STRSXP:
            value = [self.item().value for _ in range(self.length())]
        elif kind == VECSXP:
            value = [self.item() for _ in range(self.length())]
        elif kind == ALTREP_SXP:  # compact sequences (1:n): info, state, attributes
            info, state, attr = self.item(), self.item(), self.item()
            cls = info.value[0].value if info and isinstance(info.value, dict) else info.value
            if not (isinstance(state, RObject) and state.type == REALSXP and "compact" in str(cls)):
                raise BadDataError(f"R ALTREP class {cls!r} is not supported")
            n, start, step = state.value
            value = [int(start + i * step) for i in range(int(n))]
            return RObject(INTSXP, value, attr.value if attr else {})
        else:
            raise BadDataError(f"R object of type {kind} is not supported by this small reader")
        return RObject(kind, value, self.attributes() if has_attr else {})

    def attributes(self) -> dict:
        pairs = self.item()
        return pairs.value if pairs else {}


def unserialize(data: bytes) -> RObject | None:
    """One R object from its XDR serialization (the bytes ``saveRDS(x, compress=FALSE)`` writes)."""
    reader = _Reader(data)
    reader.header()
    return reader.item()


def read_rds(path: str | Path) -> RObject | None:
    """An ``.rds`` file (gzip'd or not)."""
    raw = Path(path).read_bytes()
    return unserialize(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)


def lazyload_index(rdx: str | Path) -> dict[str, tuple[int, int]]:
    """Object name -> (offset, length) in the ``.rdb`` file, from the ``.rdx`` index."""
    index = read_rds(rdx)
    variables = index.value[0]  # list(variables = ..., references = ..., compressed = ...)
    names = variables.attributes["names"].value
    return {name: tuple(int(v) for v in entry.value) for name, entry in zip(names, variables.value)}


def _raw_xz(data: bytes) -> bytes:
    lzma2 = {"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}
    return lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=[lzma2]).decompress(data)


def decompress_chunk(chunk: bytes) -> bytes:
    """One ``.rdb`` entry: a 4-byte length, then zlib data (R's default ``compress = 1``), or a type
    byte and the data (``compress = 2`` or ``3``: ``Z`` raw xz, ``2`` bzip2, ``1`` zlib, ``0`` none)."""
    body = chunk[4:]
    if body[:1] == b"x":  # a zlib header
        return zlib.decompress(body)
    kind, body = body[:1], body[1:]
    readers = {b"Z": _raw_xz, b"2": bz2.decompress, b"1": zlib.decompress, b"0": bytes}
    if kind not in readers:
        raise BadDataError(f"unknown R compression type {kind!r}")
    return readers[kind](body)


def lazyload_object(rdb: str | Path, offset: int, length: int) -> RObject | None:
    """The object stored at ``offset`` in an ``.rdb`` file."""
    with open(rdb, "rb") as f:
        f.seek(offset)
        chunk = f.read(length)
    try:
        return unserialize(decompress_chunk(chunk))
    except (zlib.error, lzma.LZMAError, OSError, ValueError) as err:
        raise BadDataError(f"{rdb}: the object at byte {offset} cannot be decompressed ({err})") from None


def column(frame: RObject, name: str) -> list:
    """A column of a data frame as a Python list; factors become their level strings."""
    names = frame.attributes["names"].value
    if name not in names:
        raise BadDataError(f"the data frame has no column {name!r}; it has {names}")
    col = frame.value[names.index(name)]
    levels = col.attributes.get("levels")
    if levels is not None:
        return [None if i == NA_INTEGER else levels.value[i - 1] for i in col.value]
    return list(col.value)
