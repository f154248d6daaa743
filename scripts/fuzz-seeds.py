#!/usr/bin/env python3
"""Makes the fuzz targets' media seeds in fuzz/corpus/media/: one small valid file of each kind
the media crate reads. Needs Pillow (scripts/test.sh installs it into target/ocr-venv) and
ffmpeg. Run once; the seeds are kept in the repository, beside the inputs that broke a target.

    target/ocr-venv/bin/python scripts/fuzz-seeds.py
"""

import pathlib
import struct
import subprocess
import wave

from PIL import Image

OUT = pathlib.Path(__file__).resolve().parent.parent / "fuzz" / "corpus" / "media"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (24, 16))
    for x in range(24):
        for y in range(16):
            image.putpixel((x, y), (x * 10, y * 15, (x * y) % 255))
    image.save(OUT / "seed.jpg", quality=80)
    for ext in ("png", "gif", "webp", "tiff", "bmp"):
        image.save(OUT / f"seed.{ext}")
    with wave.open(str(OUT / "seed.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"".join(struct.pack("<h", (i * 37) % 2000 - 1000) for i in range(400)))
    (OUT / "seed.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
        b"3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >> endobj\n"
        b"4 0 obj << /Length 44 >> stream\nBT /F1 12 Tf 20 100 Td (Harbour budget) Tj ET\n"
        b"endstream endobj\n5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n"
        b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
    (OUT / "seed.html").write_text(
        '<!doctype html><html><head><meta charset="utf-8"><title>Budget</title><style>p{}'
        "</style></head><body><h1>Harbour &amp; budget</h1><p>Le conseil a approuv&eacute; "
        "&#x1F600;</p><!-- c --><table><tr><td>a</td><td>b</td></tr></table><script>x<1"
        "</script></body></html>"
    )
    (OUT / "seed.txt").write_bytes(
        "Minutes of the meeting.\nLes comptes sont approuvés.\n会议纪要。\n".encode("utf-8")
    )
    (OUT / "seed-latin1.txt").write_bytes("Caf\xe9 cr\xe8me\r\n".encode("latin-1"))
    (OUT / "seed-utf16.txt").write_bytes("\ufeffbonjour".encode("utf-16-le"))
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
         "testsrc=duration=0.2:size=32x24:rate=10", "-f", "lavfi", "-i", "sine=duration=0.2",
         "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(OUT / "seed.mp4")],
        check=True,
    )


if __name__ == "__main__":
    main()
