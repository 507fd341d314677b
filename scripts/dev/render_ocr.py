#!/usr/bin/python3
"""Dev-only: render the OCR evaluation fixture (models/ocr/) from King James Bible verses. Never run in CI.

Needs Debian bible-kjv, imagemagick (`convert`) and fonts-dejavu. Deterministic: fixed seed, fixed fonts,
and every ImageMagick noise call is seeded (`-seed`).

Each line is a short run of whole words (<= 28 characters) from a randomly chosen verse, rendered black on
white in one of four DejaVu faces, trimmed, padded and resized to height 48 (the input height of PP-OCRv4
rec). Two variants of the same text list:
  clean:    as rendered;
  degraded: a random mix of resolution loss, Gaussian blur, rotation (up to 3 degrees), low contrast and
            additive Gaussian noise (the operations are recorded per line).

Two splits, chosen with MIXQ_OCR_SPLIT:
  test (default)  150 texts, seed 20240607, ImageMagick seeds 1000+i -> lines.{json,u8.gz}
                  (evaluation lines; the first few of each variant are also the calibration lines)
  validation      50 texts, seed 20261123, ImageMagick seeds 5000+i -> validation.{json,u8.gz}
                  (for choosing between plans; needs lines.json, skips every text already in it and
                  never repeats a text)
MIXQ_OCR_LINES overrides the number of texts.

Output per split (no image decoder needed to read it), NAME = lines or validation:
  models/ocr/NAME.u8.gz  gzip of all images concatenated, row-major uint8 grayscale (0 black, 255 white)
  models/ocr/NAME.json   {height, count, lines: [{offset, width, text, variant, font, ops}]}
"""

import gzip
import json
import os
import random
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "models", "ocr")
H = 48
SPLITS = {
    "test": {
        "name": "lines",
        "texts": 150,
        "seed": 20240607,
        "im_seed": 1000,
        "description": "KJV text lines for PP-OCRv4 rec evaluation; see scripts/dev/render_ocr.py",
    },
    "validation": {
        "name": "validation",
        "texts": 50,
        "seed": 20261123,
        "im_seed": 5000,
        "description": "KJV text lines for PP-OCRv4 rec, validation split (disjoint from lines.json, "
        "for choosing between plans); see scripts/dev/render_ocr.py",
    },
}
FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
]


def verses():
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    return [line.partition(" ")[2].strip() for line in raw.split("\n") if line.strip()]


def pick_text(rng, vs):
    while True:
        words = rng.choice(vs).split()
        start = rng.randrange(len(words))
        out = []
        for w in words[start:]:
            if len(" ".join(out + [w])) > 28:
                break
            out.append(w)
        s = " ".join(out)
        if len(s) >= 10:
            return s


def read_pgm(data):
    # P5 header: magic, width, height, maxval separated by whitespace, then one whitespace byte.
    parts, pos = [], 0
    while len(parts) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        parts.append(data[start:pos])
    assert parts[0] == b"P5" and parts[3] == b"255", parts
    w, h = int(parts[1]), int(parts[2])
    pix = data[pos + 1 : pos + 1 + w * h]
    assert len(pix) == w * h
    return w, h, pix


def render(text, font, ops, seed):
    cmd = ["convert", "-seed", str(seed), "-background", "white", "-fill", "black", "-font", font,
           "-pointsize", "40", f"label:{text}", "-trim", "+repage", "-bordercolor", "white", "-border", "10x8"]
    cmd += ops
    cmd += ["-resize", f"x{H}", "-colorspace", "Gray", "-depth", "8", "pgm:-"]
    w, h, pix = read_pgm(subprocess.run(cmd, check=True, capture_output=True).stdout)
    assert h == H, (h, text)
    return w, pix


def degrade_ops(rng):
    # Applied at render scale (text ~45 px tall) before the final resize to 48 px.
    ops = []
    if rng.random() < 0.4:
        # Resolution loss: shrink, then the final resize scales back up.
        ops += ["-resize", f"{rng.randint(40, 60)}%"]
    if rng.random() < 0.8:
        ops += ["-blur", f"0x{rng.uniform(0.8, 2.0):.2f}"]
    if rng.random() < 0.6:
        ops += ["-background", "white", "-rotate", f"{rng.uniform(-3.0, 3.0):.2f}"]
    if rng.random() < 0.5:
        ops += ["+level", f"{rng.randint(20, 40)}%,{rng.randint(75, 92)}%"]
    if rng.random() < 0.9:
        ops += ["-attenuate", f"{rng.uniform(0.5, 1.4):.2f}", "+noise", "Gaussian"]
    if not ops:
        ops += ["-blur", "0x1.5"]
    return ops


def pick_texts(rng, vs, n, exclude):
    # Validation: skip test texts and repeats. The test split keeps its original draw (no filtering).
    if exclude is None:
        return [pick_text(rng, vs) for _ in range(n)]
    texts, seen = [], set(exclude)
    while len(texts) < n:
        s = pick_text(rng, vs)
        if s not in seen:
            seen.add(s)
            texts.append(s)
    return texts


def main():
    split = os.environ.get("MIXQ_OCR_SPLIT", "test")
    if split not in SPLITS:
        raise SystemExit(f"MIXQ_OCR_SPLIT must be one of {', '.join(SPLITS)}, not {split!r}")
    cfg = SPLITS[split]
    n_lines = int(os.environ.get("MIXQ_OCR_LINES", str(cfg["texts"])))
    exclude = None
    if split != "test":
        with open(os.path.join(OUT, SPLITS["test"]["name"] + ".json")) as f:
            exclude = {l["text"] for l in json.load(f)["lines"]}
    rng = random.Random(cfg["seed"])
    vs = verses()
    texts = pick_texts(rng, vs, n_lines, exclude)
    fonts = [FONTS[i % len(FONTS)] for i in range(n_lines)]
    lines, blob = [], bytearray()
    for variant in ("clean", "degraded"):
        for i, text in enumerate(texts):
            ops = degrade_ops(rng) if variant == "degraded" else []
            w, pix = render(text, fonts[i], ops, seed=cfg["im_seed"] + i)
            lines.append({"offset": len(blob), "width": w, "text": text, "variant": variant,
                          "font": os.path.basename(fonts[i]), "ops": " ".join(ops)})
            blob += pix
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, cfg["name"] + ".u8.gz"), "wb") as f:
        # mtime=0 so the file is byte-identical on every run.
        f.write(gzip.compress(bytes(blob), compresslevel=9, mtime=0))
    meta = {
        "description": cfg["description"],
        "height": H,
        "count": len(lines),
        "bytes": len(blob),
        "encoding": "gzip of concatenated uint8 grayscale images, row-major [height, width], 255 = white",
        "lines": lines,
    }
    with open(os.path.join(OUT, cfg["name"] + ".json"), "w") as f:
        json.dump(meta, f, indent=0, ensure_ascii=False)
    print(f"{split}: {len(lines)} lines, {len(blob)} bytes raw")


if __name__ == "__main__":
    main()
