#!/usr/bin/python3
"""Dev-only: render calibration data for PaddleOCR's text detector and angle classifier. Never run in CI.

Needs Debian bible-kjv, imagemagick (/usr/bin/convert; a stand-in `convert` may shadow it on PATH) and
fonts-dejavu. Deterministic: fixed seeds for the layout and for every ImageMagick noise call.

test/fixtures/ocr-det/{calibration,validation,evaluation}/page-NN.png
    pages of 512 x 384 (height x width) pixels: 4-9 lines of King James Bible text in one of six DejaVu
    faces at 13-30 pt, dark ink on a light, slightly tinted background, left-aligned at random indents;
    about half of the pages degraded (a slight rotation, blur, low contrast, Gaussian noise or JPEG
    artefacts, each recorded in pages.json). No text appears on two pages; the three splits never share
    a text or a page.
test/fixtures/ocr-cls/{calibration,validation,evaluation}/line-NN.png
    single text lines (about 48 px tall), half of them turned 180 degrees (the class the angle classifier
    detects), recorded in lines.json.
Images with noise are written as JPEG (quality 88), the others as PNG. Each folder also gets preprocess.json: PaddleOCR's own preprocessing for the model (DetResizeForTest with
limit_side_len 960 / limit_type max and ImageNet mean / std on BGR; ClsResizeImg to 3 x 48 x 192 with
(x / 255 - 0.5) / 0.5 and zero padding).
"""

import json
import os
import random
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONVERT = "/usr/bin/convert"
FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Italic.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed.ttf",
]
PAGE_H, PAGE_W = 512, 384
SPLITS = {"calibration": 16, "validation": 8, "evaluation": 8}
CLS_SPLITS = {"calibration": 24, "validation": 12, "evaluation": 24}
DET_PREPROCESS = {
    "resize": {"kind": "limit", "maxSide": 960, "multiple": 32},
    "scale": 1 / 255,
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "channelOrder": "bgr",
    "layout": "nchw",
}
CLS_PREPROCESS = {
    "resize": {"kind": "pad", "height": 48, "width": 192, "padValue": 0},
    "scale": 1 / 255,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
    "channelOrder": "bgr",
    "layout": "nchw",
}


def verses():
    raw = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    return [line.partition(" ")[2].strip() for line in raw.split("\n") if line.strip()]


class Texts:
    """Draws text snippets of whole words; never the same snippet twice across everything rendered."""

    def __init__(self, rng):
        self.rng, self.vs, self.seen = rng, verses(), set()

    def take(self, max_chars):
        while True:
            words = self.rng.choice(self.vs).split()
            start = self.rng.randrange(len(words))
            out = []
            for w in words[start:]:
                if len(" ".join(out + [w])) > max_chars:
                    break
                out.append(w)
            s = " ".join(out).replace("'", "")
            if len(s) >= 6 and s not in self.seen:
                self.seen.add(s)
                return s


def degrade(rng):
    ops = []
    if rng.random() < 0.5:
        ops += ["-background", "white", "-rotate", f"{rng.uniform(-4, 4):.2f}", "-gravity", "center",
                "-extent", f"{PAGE_W}x{PAGE_H}"]
    if rng.random() < 0.5:
        ops += ["-blur", f"0x{rng.uniform(0.5, 1.3):.2f}"]
    if rng.random() < 0.4:
        ops += ["+level", f"{rng.randint(15, 35)}%,{rng.randint(80, 95)}%"]
    if rng.random() < 0.6:
        ops += ["-attenuate", f"{rng.uniform(0.3, 1.0):.2f}", "+noise", "Gaussian"]
    if rng.random() < 0.3:
        ops += ["-quality", str(rng.randint(25, 60)), "jpeg:-", "-"]  # marker: JPEG round trip
    return ops


def run(cmd, out):
    """Writes PNG, or JPEG (quality 88) when the image has noise: noise makes PNGs ten times larger."""
    if "+noise" in cmd or "jpeg:-" in cmd:
        out = out[: -len(".png")] + ".jpg"
    if "jpeg:-" in cmd:
        i = cmd.index("jpeg:-")
        jpg = subprocess.run(cmd[:i + 1], check=True, capture_output=True).stdout
        subprocess.run([CONVERT, "jpeg:-", "-depth", "8", "-type", "TrueColor", "-quality", "88", out], input=jpg,
                       check=True)
    else:
        extra = ["-quality", "88"] if out.endswith(".jpg") else []
        subprocess.run(cmd + ["-depth", "8", "-type", "TrueColor", *extra, out], check=True)
    return os.path.basename(out)


def page(rng, texts, seed, out):
    bg = [rng.randint(225, 255) for _ in range(3)]
    cmd = [CONVERT, "-seed", str(seed), "-size", f"{PAGE_W}x{PAGE_H}", f"xc:rgb({bg[0]},{bg[1]},{bg[2]})"]
    lines, y = [], rng.randint(10, 40)
    while True:
        size = rng.randint(13, 30)
        if y + size * 1.5 > PAGE_H - 10 or len(lines) >= 9:
            break
        font = rng.choice(FONTS)
        ink = [rng.randint(0, 80) for _ in range(3)]
        x = rng.randint(8, 60)
        text = texts.take(max(8, int((PAGE_W - x - 10) / (size * 0.6))))
        y += size
        cmd += ["-font", font, "-pointsize", str(size), "-fill", f"rgb({ink[0]},{ink[1]},{ink[2]})",
                "-annotate", f"+{x}+{y}", text]
        lines.append({"text": text, "x": x, "baseline": y, "pt": size, "font": os.path.basename(font)})
        y += int(size * rng.uniform(0.6, 2.2))
    ops = degrade(rng) if rng.random() < 0.5 else []
    name = run(cmd + ops, out)
    return {"file": name, "background": bg, "lines": lines, "ops": " ".join(ops)}


def cls_line(rng, texts, seed, out):
    font = rng.choice(FONTS)
    text = texts.take(rng.randint(8, 24))
    flipped = rng.random() < 0.5
    ink = [rng.randint(0, 80) for _ in range(3)]
    bg = [rng.randint(225, 255) for _ in range(3)]
    cmd = [CONVERT, "-seed", str(seed), "-background", f"rgb({bg[0]},{bg[1]},{bg[2]})",
           "-fill", f"rgb({ink[0]},{ink[1]},{ink[2]})", "-font", font, "-pointsize", "40", f"label:{text}",
           "-trim", "+repage", "-bordercolor", f"rgb({bg[0]},{bg[1]},{bg[2]})", "-border", "8x6",
           "-resize", "x48"]
    if rng.random() < 0.5:
        cmd += ["-attenuate", f"{rng.uniform(0.3, 1.0):.2f}", "+noise", "Gaussian"]
    if flipped:
        cmd += ["-rotate", "180"]
    name = run(cmd, out)
    return {"file": name, "text": text, "rotated180": flipped, "font": os.path.basename(font)}


def main():
    rng = random.Random(20261207)
    texts = Texts(rng)
    det_root = os.path.join(ROOT, "test", "fixtures", "ocr-det")
    cls_root = os.path.join(ROOT, "test", "fixtures", "ocr-cls")
    seed = 7000
    meta = {}
    for split, n in SPLITS.items():
        d = os.path.join(det_root, split)
        os.makedirs(d, exist_ok=True)
        meta[split] = []
        for i in range(n):
            seed += 1
            meta[split].append(page(rng, texts, seed, os.path.join(d, f"page-{i:02d}.png")))
    with open(os.path.join(det_root, "preprocess.json"), "w") as f:
        json.dump(DET_PREPROCESS, f, indent=1)
    with open(os.path.join(det_root, "pages.json"), "w") as f:
        json.dump(meta, f, indent=0)
    meta = {}
    for split, n in CLS_SPLITS.items():
        d = os.path.join(cls_root, split)
        os.makedirs(d, exist_ok=True)
        meta[split] = []
        for i in range(n):
            seed += 1
            meta[split].append(cls_line(rng, texts, seed, os.path.join(d, f"line-{i:02d}.png")))
    with open(os.path.join(cls_root, "preprocess.json"), "w") as f:
        json.dump(CLS_PREPROCESS, f, indent=1)
    with open(os.path.join(cls_root, "lines.json"), "w") as f:
        json.dump(meta, f, indent=0)
    print("rendered", sum(SPLITS.values()), "pages and", sum(CLS_SPLITS.values()), "lines")


if __name__ == "__main__":
    main()
