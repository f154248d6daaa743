#!/usr/bin/env python3
"""Build the parallel text of the translation bench (called by fetch-translate-set.sh).

  translate_set.py refcard OUT.tsv LANG=PDF...   aligned descriptions of the Debian reference card
  translate_set.py prompts OUT.tsv LANG=TXT...   Asterisk prompts aligned by prompt name

Both write "id<TAB>lang<TAB>text" with a header; one id means the same content in every language.
Stdlib only; the refcard needs poppler's pdftotext. Notes on what is dropped go to stderr.
"""
import collections, difflib, html, re, subprocess, sys

def note(msg):
    print("translate_set: " + msg, file=sys.stderr)

def write_tsv(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("id\tlang\ttext\n")
        for r in rows:
            f.write("\t".join(" ".join(c.split()) for c in r) + "\n")

# --- Reference card ---------------------------------------------------------------------------
# The card is two A4 landscape pages of three columns; each column holds two-column tables (a
# command, then what it does) under section titles. The cells are vertically centred in their row,
# so the layout text interleaves rows; but the PDF draws row by row, the command cell first, and
# `pdftotext -raw -bbox` keeps that order with each word's box. So a row is the run of lines at
# the command edge followed by the lines at the description edge; any other line is a title.
WORD = re.compile(r'<(page) width="([\d.]+)"|<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)"[^>]*>([^<]*)</word>')

def card_rows(pdf):
    out = subprocess.run(["pdftotext", "-raw", "-bbox", pdf, "-"], check=True, capture_output=True, text=True).stdout
    words, page, colw = [], -1, 1.0
    for m in WORD.finditer(out):
        if m.group(1):
            page, colw = page + 1, float(m.group(2)) / 3
        else:
            x0, y0, x1 = (float(m.group(i)) for i in (3, 4, 5))
            col = int(x0 // colw)
            words.append((page, col, x0 - col * colw, y0, x1, html.unescape(m.group(6))))
    # The two edges: the most frequent left positions within a column, 50+ pt apart.
    edges = [x for x, _ in collections.Counter(round(w[2]) for w in words).most_common(6)]
    cmd_edge = edges[0]
    desc_edge = next(x for x in edges[1:] if abs(x - cmd_edge) > 50)
    cmd_edge, desc_edge = sorted((cmd_edge, desc_edge))
    lines = []  # [page, col, kind, words, y, on the description side, right end]
    for p, c, rx, y, x1, t in words:
        side = rx >= desc_edge - 3
        last = lines[-1] if lines else None
        if last and last[:2] == [p, c] and abs(last[4] - y) < 0.5 and last[5] == side and x1 > last[6]:
            last[3].append(t)
            last[6] = x1
            continue
        kind = "cmd" if abs(rx - cmd_edge) < 1 else "desc" if abs(rx - desc_edge) < 1 else "title"
        lines.append([p, c, kind, [t], y, side, x1])
    rows, row = [], None
    for p, c, kind, ws, *_ in lines:
        if kind == "title" or not row or (p, c) != row["at"] or (kind == "cmd" and row["desc"]):
            if row and row["cmd"] and row["desc"]:  # a row without a command is a title's tail
                rows.append(row)
            row = {"at": (p, c), "cmd": [], "desc": []}
            if kind == "title":
                continue
        row[kind].append(" ".join(ws))
    if row and row["cmd"] and row["desc"]:
        rows.append(row)
    return rows

def join_lines(lines, vocab):
    """One cell's lines as one string: URLs rejoined; a word broken by LaTeX's hyphenation joined
    unless the document has the hyphenated form (a compound such as network-manager)."""
    text = ""
    for line in lines:
        prev = text.split()[-1] if text else ""
        first = line.split()[0]
        if re.search(r"://|^https?:$", prev) and re.search(r"/|\.\w", first) or prev.endswith("-/"):
            text += line
        elif re.search(r"\w-$", prev) and first[:1].isupper():  # German Web-/Dokumentation
            text += line
        elif re.search(r"\w-$", prev) and first[:1].islower():
            whole = re.sub(r"\W+$", "", prev + first).lower()
            text = text + line if whole in vocab else text[:-1] + line
        else:
            text += (" " if text else "") + line
    return text

def keys_of(rows):
    """Two keys per row: the command cell as printed; and its command and options only, which
    survive the translation of placeholders ("dpkg -S filename" / "dpkg -S archivo")."""
    full = [re.sub(r"\s+", "", " ".join(r["cmd"])).lower() for r in rows]
    skel = []
    for r in rows:
        toks = " ".join(r["cmd"]).split()
        skel.append(" ".join(toks[:1] + [t for t in toks[1:] if re.match(r"^(-|[<>|]+$)", t)]))
    return full, skel

def align(a, b, level=0):
    """Pairs (i, j) of rows of b matched to rows of a: equal keys, then inside a changed run the
    second key, then a run of equal length between two matches is paired by position (the command
    cells that were translated, such as "Web documentation")."""
    pairs = []
    sm = difflib.SequenceMatcher(None, a[level], b[level], autojunk=False)
    for op, a0, a1, b0, b1 in sm.get_opcodes():
        if op == "equal":
            pairs += zip(range(a0, a1), range(b0, b1))
        elif op == "replace" and level == 0:
            sub = align([k[a0:a1] for k in a], [k[b0:b1] for k in b], 1)
            pairs += [(a0 + i, b0 + j) for i, j in sub]
        elif op == "replace" and a1 - a0 == b1 - b0:
            pairs += zip(range(a0, a1), range(b0, b1))
    return pairs

def refcard(out_path, specs):
    langs = [s.split("=", 1)[0] for s in specs]
    rows = {s.split("=", 1)[0]: card_rows(s.split("=", 1)[1]) for s in specs}
    vocab = {}
    for lang, rs in rows.items():  # hyphenated words the document spells with the hyphen
        toks = " ".join(" ".join(r["cmd"] + r["desc"]) for r in rs).split()
        vocab[lang] = {re.sub(r"\W+$", "", t).lower() for t in toks if re.search(r"\w-\w", t)}
    en = rows["en"]
    en_keys = keys_of(en)
    seg = collections.defaultdict(dict)  # English row index -> lang -> text
    for lang in langs:
        # The card is one flow of tables around two pages, but where the flow starts on the
        # first page differs between languages: try every rotation, keep the one most alike.
        rs = rows[lang]
        rots = [rs[r:] + rs[:r] for r in range(len(rs))]
        rs = max(rots, key=lambda x: difflib.SequenceMatcher(None, en_keys[1], keys_of(x)[1], autojunk=False).ratio())
        pairs = align(en_keys, keys_of(rs))
        for i, j in pairs:
            seg[i][lang] = join_lines(rs[j]["desc"], vocab[lang])
        note("refcard %s: %d rows, %d paired with English" % (lang, len(rs), len(pairs)))
    out, ids = [], set()
    for i, r in enumerate(en):
        texts = seg.get(i, {})
        if any(l not in texts for l in langs):
            note("refcard: dropped %r (not found in every language)" % " ".join(r["cmd"]))
            continue
        # Untranslated cells are dropped, for the languages that kept the English text.
        same = [l for l in langs if l != "en" and texts[l].lower() == texts["en"].lower()]
        for l in same:
            del texts[l]
        if same:
            note("refcard: %r untranslated in %s" % (texts["en"], " ".join(same)))
        cmd = [t for t in " ".join(r["cmd"]).split() if not re.search(r"://|\..*/$", t)]  # no URLs
        slug = re.sub(r"[^a-z0-9]+", "-", " ".join(cmd).lower()).strip("-")
        base = "rc-" + (slug if len(slug) <= 30 else slug[:30].rsplit("-", 1)[0])
        sid, n = base, 1
        while sid in ids:
            n += 1
            sid = "%s-%d" % (base, n)
        ids.add(sid)
        out += [(sid, l, texts[l]) for l in langs if l in texts]
    write_tsv(out_path, out)

# --- Asterisk prompts -------------------------------------------------------------------------
ENTRY = re.compile(r"^([^;:\s][^:\s]*): (.*)$")
RUN_IN = re.compile(r"\s([a-z][a-z0-9_]*(?:-[a-z0-9_]+)+): ")  # "... vm-then-pound: poi premere"
SKIP_DIRS = ("digits/", "letters/", "phonetic/", "silence/")  # single words, spelling, silence

def read_prompts(path):
    texts = {}
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            m = ENTRY.match(line.rstrip("\r\n"))
            if not m:
                continue
            parts = RUN_IN.split(" " + m.group(2))  # [text] or [text, name, text, ...]
            pairs = [(m.group(1), parts[0])] + list(zip(parts[1::2], parts[2::2]))
            for name, text in pairs:
                texts.setdefault(name, text)
    return texts

# The Italian file lost some accented letters to "?"; these are all of them in 1.6.1-1. A "?" left
# inside a line after this (not a question mark at its end) drops the line.
LOST_ACCENTS = {"?": "è", "pu?": "può", "cos?": "così", "sar?": "sarà", "pi?": "più", "gi?": "già"}

def clean(text):
    text = re.sub(r"\[[^\]]*\]|\([^)]*\)", " ", text)  # notes: [beep], (simple tone sound plays)
    text = re.sub(r"(?<!\S)\S*\?(?=\s+\w)", lambda m: LOST_ACCENTS.get(m.group(0).lower(), m.group(0)), text)
    text = " ".join(text.split())
    text = re.sub(r"([.!?])\s+\.$", r"\1", text)  # "key. ." where a note was cut out
    if text.count('"') % 2:  # a stray quote: 'mode discrétion, ..."'
        text = text.strip('"').strip()
    if re.search(r"\?(?!\s*$)", text) or not re.search(r"\w\w", text):
        return ""
    return text

def prompts(out_path, specs):
    langs = [s.split("=", 1)[0] for s in specs]
    texts = {}
    for s in specs:
        lang, path = s.split("=", 1)
        raw = read_prompts(path)
        texts[lang] = {k: c for k, v in raw.items() if not k.startswith(SKIP_DIRS) for c in [clean(v)] if c}
    out, per = [], collections.Counter()
    for name in sorted(texts["en"], key=lambda n: n.encode()):
        en = texts["en"][name]
        # Kept: translated (not the English text), and not a placeholder: demo-moreinfo in French
        # is "Ce message n'a pas encore été écrit." (ratio 0.2; real ones stay within 0.3 to 3).
        have = [l for l in langs if l != "en" and name in texts[l] and texts[l][name].lower() != en.lower()
                and 0.25 <= len(texts[l][name]) / len(en) <= 4]
        if len(have) < 2:
            continue
        out += [(name, l, texts[l][name]) for l in ["en"] + have]
        per.update(["en"] + have)
    note("prompts: %d ids; rows %s" % (per["en"], " ".join("%s=%d" % (l, per[l]) for l in langs)))
    write_tsv(out_path, out)

if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("refcard", "prompts"):
        sys.exit(__doc__)
    (refcard if sys.argv[1] == "refcard" else prompts)(sys.argv[2], sys.argv[3:])
