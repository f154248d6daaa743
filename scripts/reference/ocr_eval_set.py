#!/usr/bin/env python3
"""Deterministic OCR evaluation set: rendered and "photographed" text in en, es, ru, zh.

    python3 scripts/reference/ocr_eval_set.py DEST [--langs en,es,ru,zh] [--backgrounds DIR]

Needs only Pillow and numpy, plus these fonts (Debian package in brackets):
    en, es, ru  DejaVu Sans / Sans Bold / Serif / Serif Italic / Sans Mono
                  /usr/share/fonts/truetype/dejavu/*.ttf            [fonts-dejavu-core]
                  (DejaVuSerif-Italic.ttf is in               [fonts-dejavu-extra])
    zh          WenQuanYi Micro Hei
                  /usr/share/fonts/truetype/wqy/wqy-microhei.ttc    [fonts-wqy-microhei]
                Noto Sans CJK SC, Noto Serif CJK SC (ttc face index 2 = SC)
                  /usr/share/fonts/opentype/noto/Noto{Sans,Serif}CJK-Regular.ttc [fonts-noto-cjk]
A language whose fonts are missing is an error (it names the package), unless it is left out
with --langs.

Output (40 images for 4 languages, about 1.5 MB):
    DEST/rendered/<lang>_<nn>.png       clean black text on white, 8-bit grayscale PNG
    DEST/photographed/<lang>_<nn>.jpg   the same text made to look like a phone photo of a
                                        printed page / poster: paper colour and texture, coloured
                                        ink, perspective warp + rotation, page lying on a
                                        (synthetic or --backgrounds) scene, uneven lighting and
                                        shadow, defocus blur, sensor noise, JPEG quality 70
    DEST/truth.tsv                      header line "file\tlanguage\tvariant\ttext", then one
                                        row per image. file is relative to DEST. Each image
                                        holds 3 lines of text; in `text` the lines are joined by
                                        the two characters backslash + 'n' (a literal backslash
                                        in the text would be written as two backslashes; the
                                        sentences contain neither backslash nor tab).
                                        Decode with ocr_cer.unescape().

Each language has 15 lines (natural sentences with digits and punctuation; Spanish with
accents, ñ, ü, ¿ ¡), grouped into 5 images of 3 lines. Fonts and sizes rotate per image.
Everything random comes from a fixed seed, so the same Pillow/FreeType and fonts give
byte-identical output. --backgrounds DIR: use the JPEG/PNG photos in DIR (sorted by name) as the
scene behind the page instead of the synthetic one (the result then depends on those files).
"""
import argparse
import io
import os
import sys
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SEED = 20240611

TEXT = {
    "en": [
        "Invoice #4521 was paid on 12 March 2024 for $1,280.50.",
        "Please keep the door closed; the cat likes to escape.",
        "Our train leaves platform 7 at 08:45, so don't be late!",
        "She measured the table: 1.8 m long and 75 cm wide.",
        "Turn left after the bakery, then walk about 200 metres.",
        "The museum is closed on Mondays and public holidays.",
        "Call (555) 013-2297 if the parcel has not arrived by Friday.",
        "Mix two cups of flour with one egg and a pinch of salt.",
        "Is it raining again? I left my umbrella at the office.",
        "Chapter 3 explains why the bridge was rebuilt in 1987.",
        "Battery level: 18% - connect the charger soon.",
        "Thanks for the photos from Lisbon, they look amazing.",
        "Room 214 is on the second floor, next to the library.",
        "The quick brown fox jumps over the lazy dog.",
        "Total weight 3.25 kg; handle with care & keep dry.",
    ],
    "es": [
        "¿Dónde está la estación de autobuses más cercana?",
        "El niño comió una piña entera después de la siesta.",
        "¡Qué sorpresa verte aquí, después de tantos años!",
        "La reunión empieza a las 9:30 en la sala número 4.",
        "Mañana lloverá en el norte y hará sol en Andalucía.",
        "El pingüino del zoológico se llama Ramón.",
        "Compré tres kilos de limones por 4,50 euros.",
        "Según el médico, debo caminar media hora al día.",
        "¿Podría traerme la cuenta, por favor?",
        "Los exámenes de español terminan el 15 de junio.",
        "Mi abuela guardaba las cartas en un baúl de madera.",
        "El tren de alta velocidad tardó 2 h 35 min en llegar.",
        "Hace frío: ponte la bufanda y los guantes.",
        "Teléfono de atención al cliente: 900 123 456.",
        "La canción que sonaba en la radio era muy antigua.",
    ],
    "ru": [
        "Съешь же ещё этих мягких французских булок, да выпей чаю.",
        "Поезд отправляется в 18:40 с третьего пути.",
        "Санкт-Петербург стоит на берегах реки Невы.",
        "Сегодня на улице минус 12 градусов и сильный ветер.",
        "Пожалуйста, закройте дверь, когда будете уходить.",
        "Книга стоит 450 рублей, а журнал - 120.",
        "Где находится ближайшая аптека?",
        "Мы встретимся у входа в музей в субботу утром.",
        "В 1961 году Юрий Гагарин впервые полетел в космос.",
        "Не забудьте выключить свет и закрыть окна!",
        "Номер заказа: 7731-А, доставка до пятницы.",
        "Моя бабушка печёт самые вкусные пироги.",
        "Осторожно, двери закрываются.",
        "Температура воды в озере около 22 градусов.",
        "Читайте инструкцию перед использованием прибора.",
    ],
    "zh": [
        "今天天气很好，我们去公园散步吧。",
        "火车将于下午3点20分从北京站出发。",
        "请不要在图书馆里大声说话。",
        "这本书一共有12章，我已经读完了一半。",
        "我的电话号码是138-0013-8000。",
        "周末我们一起去吃火锅，好吗？",
        "超市的苹果今天打八折。",
        "他每天早上六点起床跑步。",
        "会议改到星期四上午十点。",
        "小心地滑！",
        "这家餐厅的饺子非常好吃。",
        "请在2024年5月31日前提交报告。",
        "妈妈在厨房里做饭。",
        "学习一门新的语言需要耐心。",
        "出口在左边，洗手间在二楼。",
    ],
}

DEJAVU = "/usr/share/fonts/truetype/dejavu/"
LATIN_FONTS = [  # (path, ttc index, Debian package)
    (DEJAVU + "DejaVuSans.ttf", 0, "fonts-dejavu-core"),
    (DEJAVU + "DejaVuSerif.ttf", 0, "fonts-dejavu-core"),
    (DEJAVU + "DejaVuSans-Bold.ttf", 0, "fonts-dejavu-core"),
    (DEJAVU + "DejaVuSerif-Italic.ttf", 0, "fonts-dejavu-extra"),
    (DEJAVU + "DejaVuSansMono.ttf", 0, "fonts-dejavu-core"),
]
NOTO = "/usr/share/fonts/opentype/noto/"
CJK_FONTS = [
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0, "fonts-wqy-microhei"),
    (NOTO + "NotoSerifCJK-Regular.ttc", 2, "fonts-noto-cjk"),
    (NOTO + "NotoSansCJK-Regular.ttc", 2, "fonts-noto-cjk"),
    (NOTO + "NotoSerifCJK-Bold.ttc", 2, "fonts-noto-cjk"),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0, "fonts-wqy-microhei"),
]
FONTS = {"en": LATIN_FONTS, "es": LATIN_FONTS, "ru": LATIN_FONTS, "zh": CJK_FONTS}
RENDER_SIZES = [28, 32, 24, 36, 30]  # px, per image index
LINES_PER_IMAGE = 3


def escape(text):
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def check_fonts(langs):
    missing = sorted({pkg for lang in langs for path, _, pkg in FONTS[lang] if not os.path.exists(path)})
    if missing:
        sys.exit("ocr_eval_set.py: missing fonts; apt-get install " + " ".join(missing)
                 + " (or leave the language out with --langs)")


def render_lines(lines, font, ink, paper, margin, spacing):
    """Lines of text, left-aligned, on an RGB canvas sized to fit."""
    asc, desc = font.getmetrics()
    line_h = asc + desc
    widths = [int(np.ceil(font.getlength(line))) for line in lines]
    w = max(widths) + 2 * margin
    h = len(lines) * line_h + (len(lines) - 1) * spacing + 2 * margin
    img = Image.new("RGB", (w, h), paper)
    draw = ImageDraw.Draw(img)
    y = margin
    for line in lines:
        draw.text((margin, y), line, font=font, fill=ink)
        y += line_h + spacing
    return img


def perspective_coeffs(dst, src):
    """Coefficients for Image.transform(PERSPECTIVE): output point dst[i] samples input src[i]."""
    a, b = [], []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        b += [u, v]
    return np.linalg.solve(np.array(a, float), np.array(b, float)).tolist()


def lowfreq_noise(rng, h, w, cells):
    """Smooth random field in [0,1]: coarse grid upsampled bicubically."""
    gh, gw = max(2, h * cells // max(h, w) + 2), max(2, w * cells // max(h, w) + 2)
    g = (rng.random((gh, gw)) * 255).astype(np.uint8)
    return np.asarray(Image.fromarray(g).resize((w, h), Image.BICUBIC), np.float32) / 255.0


def synthetic_scene(rng, h, w):
    """A blurry "table / wall" scene: colour gradient, a few soft shapes, wood-ish streaks."""
    base = rng.uniform(60, 170, 3)
    other = rng.uniform(40, 200, 3)
    t = lowfreq_noise(rng, h, w, 3)[..., None]
    scene = base * (1 - t) + other * t
    streaks = np.sin(np.linspace(0, rng.uniform(20, 60), w))[None, :, None] * rng.uniform(5, 15)
    scene = scene + streaks
    img = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(6):
        x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        r = int(rng.uniform(0.05, 0.25) * max(w, h))
        col = tuple(int(c) for c in rng.uniform(20, 230, 3))
        if rng.random() < 0.5:
            draw.ellipse([x0 - r, y0 - r, x0 + r, y0 + r], fill=col)
        else:
            draw.rectangle([x0 - r, y0 - r // 2, x0 + r, y0 + r // 2], fill=col)
    return img.filter(ImageFilter.GaussianBlur(8))


def photo_scene(path, h, w, rng):
    img = Image.open(path).convert("RGB")
    scale = max(w / img.width, h / img.height)
    img = img.resize((int(np.ceil(img.width * scale)), int(np.ceil(img.height * scale))), Image.BILINEAR)
    x0 = int(rng.integers(0, img.width - w + 1))
    y0 = int(rng.integers(0, img.height - h + 1))
    return img.crop((x0, y0, x0 + w, y0 + h))


PAPERS = [  # (paper RGB, ink RGB)
    ((236, 231, 218), (25, 25, 30)),     # off-white paper, black ink
    ((245, 238, 200), (30, 35, 90)),     # yellowish paper, dark blue ink
    ((250, 250, 246), (50, 50, 50)),     # white, dark grey
    ((212, 228, 240), (20, 20, 20)),     # pale blue card, black
    ((248, 214, 120), (60, 20, 20)),     # yellow poster, dark brown
]


def photographed(lines, font_path, index, size, paper_ink, rng, background):
    paper, ink = paper_ink
    font = ImageFont.truetype(font_path, size, index=index)
    page = render_lines(lines, font, ink, paper, margin=int(size * 1.2), spacing=int(size * 0.5))
    pw, ph = page.size
    # paper texture (fibres + blotches) multiplied into the page
    tex = 1.0 - 0.06 * lowfreq_noise(rng, ph, pw, 8) - 0.03 * rng.random((ph, pw)).astype(np.float32)
    page = Image.fromarray(np.clip(np.asarray(page, np.float32) * tex[..., None], 0, 255).astype(np.uint8))

    # canvas: page placed with a border of scene around it, then perspective-warped + rotated
    bw, bh = int(pw * 0.12) + 20, int(ph * 0.25) + 20
    cw, ch = pw + 2 * bw, ph + 2 * bh
    scene = photo_scene(background, ch, cw, rng) if background else synthetic_scene(rng, ch, cw)
    corners = np.array([[bw, bh], [bw + pw, bh], [bw + pw, bh + ph], [bw, bh + ph]], float)
    angle = np.deg2rad(rng.uniform(-4, 4))
    c = corners.mean(0)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    warped = (corners - c) @ rot.T + c
    warped += rng.uniform(-1, 1, (4, 2)) * np.array([pw * 0.035, ph * 0.08])  # keystone
    src = [(0, 0), (pw, 0), (pw, ph), (0, ph)]
    coeffs = perspective_coeffs([tuple(p) for p in warped], src)
    page_w = page.transform((cw, ch), Image.PERSPECTIVE, coeffs, Image.BICUBIC, fillcolor=(0, 0, 0))
    mask = Image.new("L", (pw, ph), 255).transform((cw, ch), Image.PERSPECTIVE, coeffs, Image.BILINEAR, fillcolor=0)
    # soft drop shadow of the page onto the scene
    shadow = mask.filter(ImageFilter.GaussianBlur(6))
    sh = np.asarray(shadow, np.float32)[..., None] / 255.0
    sh = np.roll(np.roll(sh, 6, 0), 6, 1)
    img = np.asarray(scene, np.float32) * (1 - 0.45 * sh)
    m = np.asarray(mask, np.float32)[..., None] / 255.0
    img = img * (1 - m) + np.asarray(page_w, np.float32) * m

    # uneven lighting: a directional gradient + vignette + one soft shadow blob (hand / phone)
    yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
    theta = rng.uniform(0, 2 * np.pi)
    grad = ((xx / cw - 0.5) * np.cos(theta) + (yy / ch - 0.5) * np.sin(theta))
    light = 1.0 + rng.uniform(0.25, 0.45) * grad
    vig = ((xx / cw - 0.5) ** 2 + (yy / ch - 0.5) ** 2)
    light *= 1.0 - rng.uniform(0.25, 0.45) * vig
    sx, sy = rng.uniform(0, cw), rng.uniform(0, ch)
    sr = rng.uniform(0.2, 0.4) * cw
    light *= 1.0 - rng.uniform(0.10, 0.22) * np.exp(-(((xx - sx) ** 2 + (yy - sy) ** 2) / (2 * sr ** 2)))
    warm = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.85, 0.97)], np.float32)  # colour cast
    img = img * light[..., None] * warm

    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.3)))  # defocus
    scale = rng.uniform(0.75, 0.95)  # phone photo downsampled a bit
    out = out.resize((int(cw * scale), int(ch * scale)), Image.BILINEAR)
    a = np.asarray(out, np.float32)
    a = a + rng.normal(0, rng.uniform(4, 8), a.shape[:2])[..., None] + rng.normal(0, 3, a.shape)  # luma + chroma noise
    out = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=70)
    return buf.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--langs", default="en,es,ru,zh")
    ap.add_argument("--backgrounds", help="folder of photos to use as the scene behind the page")
    args = ap.parse_args()
    langs = [l for l in args.langs.split(",") if l]
    for lang in langs:
        if lang not in TEXT:
            sys.exit(f"ocr_eval_set.py: unknown language {lang!r}; have {sorted(TEXT)}")
    check_fonts(langs)
    backgrounds = []
    if args.backgrounds:
        backgrounds = sorted(os.path.join(args.backgrounds, f) for f in os.listdir(args.backgrounds)
                             if f.lower().endswith((".jpg", ".jpeg", ".png")))
        if not backgrounds:
            sys.exit(f"ocr_eval_set.py: no JPEG/PNG in {args.backgrounds}")

    os.makedirs(os.path.join(args.dest, "rendered"), exist_ok=True)
    os.makedirs(os.path.join(args.dest, "photographed"), exist_ok=True)
    rows = []
    n_img = 0
    for lang in langs:
        lines = TEXT[lang]
        # one RNG per language, seeded from the fixed seed and the language name
        rng = np.random.default_rng([SEED, zlib.crc32(lang.encode())])
        for i in range(0, len(lines), LINES_PER_IMAGE):
            k = i // LINES_PER_IMAGE
            block = lines[i:i + LINES_PER_IMAGE]
            truth = escape("\n".join(block))
            font_path, font_index, _ = FONTS[lang][k % len(FONTS[lang])]
            size = RENDER_SIZES[k % len(RENDER_SIZES)]

            font = ImageFont.truetype(font_path, size, index=font_index)
            img = render_lines(block, font, (0, 0, 0), (255, 255, 255), margin=size, spacing=size // 3).convert("L")
            name = f"rendered/{lang}_{k:02d}.png"
            img.save(os.path.join(args.dest, name), optimize=True)
            rows.append((name, lang, "rendered", truth))

            bg = backgrounds[n_img % len(backgrounds)] if backgrounds else None
            jpg = photographed(block, font_path, font_index, int(size * 1.4), PAPERS[k % len(PAPERS)], rng, bg)
            name = f"photographed/{lang}_{k:02d}.jpg"
            with open(os.path.join(args.dest, name), "wb") as f:
                f.write(jpg)
            rows.append((name, lang, "photographed", truth))
            n_img += 1

    with open(os.path.join(args.dest, "truth.tsv"), "w", encoding="utf-8", newline="\n") as f:
        f.write("file\tlanguage\tvariant\ttext\n")
        for row in rows:
            f.write("\t".join(row) + "\n")
    print(f"wrote {len(rows)} images and truth.tsv to {args.dest}")


if __name__ == "__main__":
    main()
