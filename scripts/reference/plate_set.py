#!/usr/bin/env python3
"""Licence plates drawn on real photos of vehicles, to measure that Aperture does not read them.

    python3 scripts/reference/plate_set.py DEST --photos DIR

DIR holds the vehicle photos of the test samples (scripts/fetch-samples.sh):
photos/imagenet/imagenet_06_609.jpg and imagenet_07_609.jpg (jeeps, 224 px, enlarged four
times first) and photos/skimage/motorcycle_left.png and motorcycle_right.png. Five national
formats (Germany, the United Kingdom, France, Spain, the Netherlands) on each of the four
photos: 20 plates, each with its own registration, drawn as a plate is (white or yellow,
black border, the EU band with its country letters where the country has one), slightly turned,
then blurred a little and saved as JPEG quality 88, as a phone photo would be.

Output: DEST/<country>_<photo>.jpg and DEST/truth.tsv ("file\\tcountry\\tplate"). Needs
Pillow and the DejaVu fonts (Debian fonts-dejavu-core). Everything random comes from a fixed
seed, so the same Pillow and fonts give the same files.
"""
import argparse
import os
import random
import sys

from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 20261205
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
PHOTOS = [
    ("jeep1", "imagenet/imagenet_06_609.jpg"),
    ("jeep2", "imagenet/imagenet_07_609.jpg"),
    ("moto1", "skimage/motorcycle_left.png"),
    ("moto2", "skimage/motorcycle_right.png"),
]
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"


def registration(country, rng):
    L = lambda n: "".join(rng.choice(LETTERS) for _ in range(n))
    D = lambda n: "".join(rng.choice("123456789") for _ in range(n))
    if country == "de":
        return f"{L(rng.choice([1, 2]))} {L(2)} {D(rng.choice([3, 4]))}", "D", (255, 255, 255)
    if country == "uk":
        return f"{L(2)}{D(2)} {L(3)}", "UK", (250, 210, 40)
    if country == "fr":
        return f"{L(2)}-{D(3)}-{L(2)}", "F", (255, 255, 255)
    if country == "es":
        return f"{D(4)} {''.join(rng.choice('BCDFGHJKLMNPRSTVWXYZ') for _ in range(3))}", "E", (255, 255, 255)
    if country == "nl":
        return f"{D(2)}-{L(3)}-{D(1)}", "NL", (250, 200, 30)
    raise ValueError(country)


def plate(text, band, colour, height):
    font = ImageFont.truetype(FONT, int(height * 0.72))
    left, top, right, bottom = font.getbbox(text)
    band_w = int(height * 0.45)
    width = band_w + (right - left) + int(height * 0.5)
    img = Image.new("RGB", (width, height), colour)
    d = ImageDraw.Draw(img)
    d.rectangle([0, 0, band_w, height], fill=(0, 51, 153))
    small = ImageFont.truetype(FONT, int(height * 0.28))
    d.text((band_w / 2, height * 0.72), band, font=small, fill=(255, 255, 255), anchor="mm")
    d.text((band_w + height * 0.25 - left, (height - (bottom - top)) / 2 - top), text, font=font, fill=(0, 0, 0))
    d.rectangle([0, 0, width - 1, height - 1], outline=(0, 0, 0), width=max(2, height // 20))
    return img


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dest")
    ap.add_argument("--photos", required=True)
    args = ap.parse_args()
    if not os.path.exists(FONT):
        sys.exit(f"{FONT} is missing: install the Debian package fonts-dejavu-core")
    rng = random.Random(SEED)
    os.makedirs(args.dest, exist_ok=True)
    rows = []
    for name, rel in PHOTOS:
        base = Image.open(os.path.join(args.photos, rel)).convert("RGB")
        if base.width < 500:
            base = base.resize((base.width * 4, base.height * 4), Image.LANCZOS)
        for country in ["de", "uk", "fr", "es", "nl"]:
            text, band, colour = registration(country, rng)
            p = plate(text, band, colour, int(base.height * rng.uniform(0.09, 0.12)))
            p = p.rotate(rng.uniform(-4, 4), expand=True, resample=Image.BICUBIC, fillcolor=(40, 40, 40))
            img = base.copy()
            x = int((img.width - p.width) * rng.uniform(0.3, 0.7))
            y = int((img.height - p.height) * rng.uniform(0.55, 0.85))
            img.paste(p, (x, y))
            img = img.filter(ImageFilter.GaussianBlur(0.6))
            file = f"{country}_{name}.jpg"
            img.save(os.path.join(args.dest, file), quality=88)
            rows.append((file, country, text))
    with open(os.path.join(args.dest, "truth.tsv"), "w") as f:
        f.write("file\tcountry\tplate\n")
        for r in rows:
            f.write("\t".join(r) + "\n")


if __name__ == "__main__":
    main()
