#!/bin/sh
# Rendering and MIME building, in process, on one core: messages per second for a
# ~4 KB text + HTML message with 10 substitutions (English: 7bit; Russian: base64),
# and the peak RSS after 20,000 and 1,000,000 messages (memory must stay flat).
# Target: at least 50,000 messages per second.
# Usage: bench/render.sh [BUILD]   (default build)
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-build}
WORK=$(mktemp -d /tmp/blast-bench-render.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

make --no-print-directory BUILD="$BUILD" "$BUILD/render-bench" >/dev/null
/usr/bin/python3 - "$WORK" <<'PY'
import random, sys
d = sys.argv[1]
random.seed(2)
langs = {
    "en": ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
           "incididunt ut labore et dolore magna aliqua").split(),
    "ru": ("съешь же ещё этих мягких французских булок да выпей чаю широкая "
           "электрификация южных губерний даст мощный толчок").split(),
}
for lang, words in langs.items():
    para = lambda n: " ".join(random.choice(words) for _ in range(n))
    n = 6 if lang == "en" else 3
    tail = ("Your plan: {{plan}} in {{city}}, {{country}}.\nScore {{score}}, since {{signup}}.\n"
            "Code {{code}}. Contact {{email}}.\n")
    text = ("Hello {{first_name}} {{last_name}},\n\n" +
            "\n\n".join(para(45) for _ in range(n)) + "\n\n" + tail)
    html = ("<html><body><p>Hello {{first_name}} {{last_name}},</p>\n" +
            "\n".join("<p>" + para(45) + "</p>" for _ in range(n)) +
            "\n<p>" + tail.replace("\n", "<br>\n") + "</p></body></html>\n")
    open(f"{d}/{lang}.txt", "w").write(text)
    open(f"{d}/{lang}.html", "w").write(html)
    open(f"{d}/{lang}.yml", "w").write(
        "name: bench\nfrom: \"Acme News <news@acme.example>\"\n"
        "subject: \"{{first_name}}, your update\"\nrecipients: {path: list.csv}\n"
        f"body: {{text: {lang}.txt, html: {lang}.html}}\n"
        "relays: [{host: 127.0.0.1, tls: none}]\n")
with open(f"{d}/list.csv", "w") as f:
    f.write("email,first_name,last_name,city,country,plan,signup,score,code\n")
    for i in range(10000):
        f.write(f"user{i}@example{i % 50}.com,First{i},Last{i},City{i % 300},"
                f"Country{i % 40},plan{i % 3},2024-01-{i % 28 + 1:02d},{i % 100},C{i:06d}\n")
PY
for lang in en ru; do
    echo "== $lang"
    taskset -c 0 "$BUILD/render-bench" "$WORK/$lang.yml" 20000
    taskset -c 0 "$BUILD/render-bench" "$WORK/$lang.yml" 1000000
done
