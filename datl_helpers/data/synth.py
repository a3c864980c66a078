"""The `syn` domain's renderer: digits drawn from TrueType fonts, then coloured, blurred and noised.

The goal is a labelled source that varies in every way the real targets do (stroke width, slant,
scale, position, colour, texture, blur), so a network pretrained on it learns the digit shapes and
little else. Everything is drawn from one seed, so the same seed gives the same images.

Shapes come from PIL (one glyph at a time, on a 64 x 64 canvas, then an affine warp and a 2x
antialiased downscale), then a smooth random warp and pen width make them look more hand-drawn.
Colours, textures, blur and noise are applied to the whole batch at once with torch. Textures are
procedural noise or crops of *grey* photographs shipped with scikit-image, coloured at random; the
colour photographs that `mnistm` is made from are never used, so `syn` shares no pixels with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

CANVAS = 64
SIZE = 32
# Computer Modern's symbol and extension fonts map the digit code points to other symbols.
NOT_DIGIT_FONTS = ("cmex10", "cmsy10")
# Font sizes on the 64-pixel canvas: digits end up 14-22 pixels tall at 32 x 32, like padded MNIST.
FONT_SIZES = (40, 56)


def font_paths() -> list[Path]:
    """The TrueType fonts shipped with matplotlib whose ten digit glyphs are all distinct."""
    import matplotlib

    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    paths = sorted(root.glob("*.ttf"))
    return [p for p in paths if p.stem not in NOT_DIGIT_FONTS and _draws_digits(p)]


def _draws_digits(path: Path) -> bool:
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(str(path), 40)
    except OSError:
        return False
    masks = []
    for d in "0123456789":
        img = Image.new("L", (CANVAS, CANVAS))
        ImageDraw.Draw(img).text((CANVAS / 2, CANVAS / 2), d, fill=255, font=font, anchor="mm")
        a = np.asarray(img) > 127
        if a.sum() < 20:
            return False
        masks.append(a.tobytes())
    return len(set(masks)) == 10


def _glyph(digit: int, font, stroke: int, rng: np.random.Generator) -> np.ndarray:
    """One digit as a 32 x 32 float mask in [0, 1], randomly warped."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (CANVAS, CANVAS))
    ImageDraw.Draw(img).text(
        (CANVAS / 2, CANVAS / 2), str(digit), fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255
    )
    # Inverse affine map (output -> input) around the centre: rotation, shear, anisotropic scale, shift.
    angle = np.deg2rad(rng.uniform(-15, 15))
    shear = rng.uniform(-0.3, 0.3)
    sx, sy = rng.uniform(0.8, 1.2), rng.uniform(0.85, 1.15)
    tx, ty = rng.uniform(-5, 5), rng.uniform(-4, 4)
    c, s = np.cos(angle), np.sin(angle)
    a = np.array([[c, -s], [s, c]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
    inv = np.linalg.inv(a)
    centre = np.array([CANVAS / 2, CANVAS / 2])
    offset = centre - inv @ (centre + np.array([tx, ty]))
    coeffs = (inv[0, 0], inv[0, 1], offset[0], inv[1, 0], inv[1, 1], offset[1])
    img = img.transform((CANVAS, CANVAS), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    img = img.resize((SIZE, SIZE), Image.LANCZOS)
    return np.asarray(img, dtype=np.float32) / 255.0


def render_masks(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Glyph masks (N x 32 x 32 float) for ``labels``, each in a random font, size and stroke."""
    from PIL import ImageFont

    paths = font_paths()
    fonts: dict[tuple[int, int], object] = {}
    masks = np.empty((len(labels), SIZE, SIZE), dtype=np.float32)
    for i, digit in enumerate(labels):
        key = (int(rng.integers(len(paths))), int(rng.integers(FONT_SIZES[0], FONT_SIZES[1])))
        if key not in fonts:
            fonts[key] = ImageFont.truetype(str(paths[key[0]]), key[1])
        stroke = int(rng.choice([0, 0, 0, 1, 1, 2]))
        masks[i] = _glyph(int(digit), fonts[key], stroke, rng)
    return masks, [p.stem for p in paths]


def deform(masks: torch.Tensor, g: torch.Generator, strength: float = 2.0) -> torch.Tensor:
    """Make printed glyphs look more hand-drawn: a smooth random warp and a random pen width.

    The warp is a 4 x 4 grid of random displacements (about ``strength`` pixels), upsampled to a
    smooth field; the pen width comes from a 3 x 3 dilation (a third of the images) or erosion
    (a sixth, where the glyph survives it). Works on a whole batch of N x 32 x 32 masks at once.
    """
    n = len(masks)
    m = masks.unsqueeze(1)
    coarse = (torch.rand(n, 2, 4, 4, generator=g) * 2 - 1) * (strength * 2 / SIZE)
    flow = F.interpolate(coarse, size=(SIZE, SIZE), mode="bicubic", align_corners=False).permute(0, 2, 3, 1)
    identity = F.affine_grid(torch.eye(2, 3).expand(n, 2, 3), (n, 1, SIZE, SIZE), align_corners=False)
    m = F.grid_sample(m, identity + flow, mode="bilinear", padding_mode="zeros", align_corners=False)
    pen = torch.rand(n, generator=g)
    thick = F.max_pool2d(m, 3, stride=1, padding=1)
    thin = -F.max_pool2d(-m, 3, stride=1, padding=1)
    # erosion only where the glyph survives it (thin strokes would vanish)
    survives = (thin.sum(dim=(1, 2, 3)) > 0.5 * m.sum(dim=(1, 2, 3))) & (thin.amax(dim=(1, 2, 3)) > 0.6)
    m = torch.where((pen < 1 / 3).view(n, 1, 1, 1), thick, m)
    m = torch.where(((pen > 5 / 6) & survives).view(n, 1, 1, 1), thin, m)
    return m.squeeze(1)


# Grey photographs of surfaces and scenes that ship with scikit-image; `mnistm` uses none of them.
GREY_PHOTOS = ("brick", "grass", "gravel", "camera", "coins", "moon", "page", "text", "cell", "clock")


def grey_photos() -> list[np.ndarray]:
    """The grey photographs in :data:`GREY_PHOTOS` (a scikit-image release lacking one skips it)."""
    from skimage import data as skdata

    photos = []
    for name in GREY_PHOTOS:
        try:
            img = np.asarray(getattr(skdata, name)())
        except Exception:  # not in this release, or it would need a download
            continue
        if img.ndim == 2:
            photos.append(img.astype(np.uint8))
    return photos


def photo_textures(n: int, photos: list[np.ndarray], rng: np.random.Generator, g: torch.Generator) -> torch.Tensor:
    """Random crops (16 to 96 pixels, resized to 32) of grey photographs, coloured at random.

    Each channel is ``gain * crop + offset`` with its own random gain (possibly negative) and
    offset, so one grey crop becomes a coloured natural texture with real edges.
    """
    crops = np.empty((n, SIZE, SIZE), dtype=np.float32)
    from PIL import Image

    for i in range(n):
        photo = photos[rng.integers(len(photos))]
        side = int(rng.integers(16, min(96, *photo.shape) + 1))
        r = rng.integers(0, photo.shape[0] - side + 1)
        c = rng.integers(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[r : r + side, c : c + side]).resize((SIZE, SIZE), Image.BILINEAR)
        crops[i] = np.asarray(crop, dtype=np.float32) / 255.0
    t = torch.from_numpy(crops).unsqueeze(1)
    gain = torch.rand(n, 3, 1, 1, generator=g) * 2 - 1
    offset = torch.rand(n, 3, 1, 1, generator=g)
    out = gain * (t - 0.5) + offset
    lo, hi = out.amin(dim=(1, 2, 3), keepdim=True), out.amax(dim=(1, 2, 3), keepdim=True)
    return (out - lo) / (hi - lo + 1e-6)


def _texture(n: int, g: torch.Generator) -> torch.Tensor:
    """Procedural colour textures (N x 3 x 32 x 32 in [0, 1]): noise summed over a few octaves."""
    out = torch.zeros(n, 3, SIZE, SIZE)
    total = 0.0
    for cells, weight in ((2, 1.0), (4, 0.7), (8, 0.5), (16, 0.35)):
        noise = torch.rand(n, 3, cells, cells, generator=g)
        out += weight * F.interpolate(noise, size=(SIZE, SIZE), mode="bicubic", align_corners=False)
        total += weight
    out /= total
    # stretch the contrast of each texture to a random range
    lo = out.amin(dim=(1, 2, 3), keepdim=True)
    hi = out.amax(dim=(1, 2, 3), keepdim=True)
    span = torch.rand(n, 1, 1, 1, generator=g) * 0.8 + 0.2
    base = torch.rand(n, 1, 1, 1, generator=g) * (1 - span)
    return (out - lo) / (hi - lo + 1e-6) * span + base


def _gradient(n: int, g: torch.Generator) -> torch.Tensor:
    """Linear colour gradients in a random direction (N x 3 x 32 x 32 in [0, 1])."""
    a, b = torch.rand(n, 3, 1, 1, generator=g), torch.rand(n, 3, 1, 1, generator=g)
    theta = torch.rand(n, 1, 1, 1, generator=g) * 2 * torch.pi
    ramp = torch.linspace(0, 1, SIZE)
    t = torch.cos(theta) * ramp.view(1, 1, 1, -1) + torch.sin(theta) * ramp.view(1, 1, -1, 1)
    t = (t - t.amin(dim=(2, 3), keepdim=True)) / (t.amax(dim=(2, 3), keepdim=True) - t.amin(dim=(2, 3), keepdim=True) + 1e-6)
    return a + (b - a) * t


def colourize(masks: torch.Tensor, g: torch.Generator, photo_tex: torch.Tensor | None = None) -> torch.Tensor:
    """Compose glyph masks (N x 32 x 32) with random foregrounds and backgrounds, then blur and noise.

    Styles, one per image: white on black and black on white (like scanned digits), two solid
    colours with enough contrast, gradients, and textures where the digit is drawn in the
    inverted texture (the look of MNIST-M, made without photographs).
    """
    n = len(masks)
    m = masks.unsqueeze(1)
    style = torch.tensor([0, 1, 2, 3, 4, 4, 5])[torch.randint(0, 7, (n,), generator=g)]
    bg = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, SIZE, SIZE).clone()
    fg = torch.rand(n, 3, 1, 1, generator=g).expand(n, 3, SIZE, SIZE).clone()
    # make solid colours contrast: a foreground too close in luminance becomes a much darker or
    # much lighter shade of the background
    lum = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).unsqueeze(1)  # noqa: E731
    low = (lum(fg) - lum(bg)).abs() < 0.35
    shade = torch.where(lum(bg) > 0.5, bg * 0.3, bg * 0.3 + 0.7)
    fg = torch.where(low, shade, fg)
    grey = torch.zeros(n, 3, SIZE, SIZE)
    # textures live in the dark or the bright half, so a digit drawn in the other half stays legible
    dark = (torch.rand(n, 1, 1, 1, generator=g) < 0.5).float()
    tex, tex2 = _texture(n, g), _texture(n, g)
    if photo_tex is not None:  # half of the textures come from photographs
        use_photo = (torch.rand(n, 1, 1, 1, generator=g) < 0.7)
        tex = torch.where(use_photo, photo_tex, tex)
    tex = tex * 0.55 + (1 - dark) * 0.45
    tex2 = tex2 * 0.55 + dark * 0.45
    grad = _gradient(n, g)
    pick = lambda k: (style == k).view(n, 1, 1, 1)  # noqa: E731
    # 0: white on black, 1: black on white, 2: solid colours (already), 3: gradient background,
    # 4: texture background + inverted-texture digit (MNIST-M's look), 5: two textures
    bg = torch.where(pick(0), grey, bg)
    fg = torch.where(pick(0), grey + 1, fg)
    bg = torch.where(pick(1), grey + 1, bg)
    fg = torch.where(pick(1), grey, fg)
    bright = lum(grad).mean(dim=(2, 3), keepdim=True) > 0.5
    bg = torch.where(pick(3), grad, bg)
    fg = torch.where(pick(3), torch.where(bright, grey, grey + 1), fg)
    bg = torch.where(pick(4) | pick(5), tex, bg)
    fg = torch.where(pick(4), 1 - tex, fg)
    fg = torch.where(pick(5), tex2, fg)
    img = bg * (1 - m) + fg * m
    # blur: three strengths, chosen per image
    from torchvision.transforms.v2 import functional as TF

    blur = torch.randint(0, 3, (n,), generator=g)
    for level, sigma in ((1, 0.6), (2, 1.0)):
        idx = torch.nonzero(blur == level).flatten()
        if len(idx):
            img[idx] = TF.gaussian_blur(img[idx], kernel_size=[5, 5], sigma=[sigma, sigma])
    noise = torch.randn(n, 3, SIZE, SIZE, generator=g) * (torch.rand(n, 1, 1, 1, generator=g) * 0.08)
    return ((img + noise).clamp(0, 1) * 255).round().to(torch.uint8)


def render_digits(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray, list[str]]:
    """``n`` synthetic digits (uint8 N x 3 x 32 x 32), their labels (balanced) and the fonts used."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
    masks, fonts = render_masks(labels, rng)
    g = torch.Generator().manual_seed(seed)
    photos = grey_photos()
    photo_tex = photo_textures(n, photos, rng, g) if photos else None
    images = colourize(deform(torch.from_numpy(masks), g), g, photo_tex)
    return images, labels, fonts
