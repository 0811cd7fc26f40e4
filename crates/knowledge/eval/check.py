#!/usr/bin/env python3
"""Check the PostgreSQL 15 retrieval evaluation set (python3 standard library only).

Every line of the set must be a JSON object with exactly the keys id, question,
document and evidence; ids are unique; `document` names a file of the manual; the
evidence is 25 to 120 characters long and occurs verbatim in the document's
normalised text, inside a single block (paragraph, list item, table cell,
definition, ...); no document has more than 3 questions; and the evidence occurs
in no other document of the manual (so a passage from another page can never be
judged relevant by accident).

Normalisation: parse the HTML, drop <script>, <style>, <head> and the navigation
blocks (<div class="navheader">, <div class="navfooter">), decode entities, and
collapse every run of white space to one space. A block element (p, li, dd, td, ...)
ends the text before it, so two blocks never run together.

Usage: check.py [SET.jsonl] [--html DIR]
Defaults: postgresql-15.jsonl next to this script, /usr/share/doc/postgresql-doc-15/html.
Exit status 0 when every line passes, 1 otherwise.
"""

import argparse
import collections
import json
import os
import sys
from html.parser import HTMLParser

DEFAULT_HTML = "/usr/share/doc/postgresql-doc-15/html"
KEYS = {"id", "question", "document", "evidence"}
MIN_EVIDENCE, MAX_EVIDENCE = 25, 120
MAX_PER_DOCUMENT = 3

# Elements whose whole content is dropped.
DROPPED = {"script", "style", "head"}
# Navigation blocks, dropped by class.
DROPPED_DIV_CLASSES = {"navheader", "navfooter"}
# Elements that end the block of text before them.
BLOCKS = {
    "address", "article", "blockquote", "body", "br", "caption", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot",
    "th", "thead", "tr", "ul",
}


def collapse(text):
    """Every run of white space as one space, trimmed."""
    return " ".join(text.split())


class Normaliser(HTMLParser):
    """The visible text of a page, as one string and as a list of blocks."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.blocks = []
        self.current = []
        self.skip_tag = None  # the element being dropped
        self.skip_depth = 0  # how deep inside it (same-name nesting)

    def handle_starttag(self, tag, attrs):
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth += 1
            return
        if tag in DROPPED:
            self.skip_tag, self.skip_depth = tag, 1
            return
        if tag == "div":
            classes = set((dict(attrs).get("class") or "").split())
            if classes & DROPPED_DIV_CLASSES:
                self.skip_tag, self.skip_depth = tag, 1
                return
        if tag in BLOCKS:
            self.flush()

    def handle_endtag(self, tag):
        if self.skip_tag is not None:
            if tag == self.skip_tag:
                self.skip_depth -= 1
                if self.skip_depth == 0:
                    self.skip_tag = None
            return
        if tag in BLOCKS:
            self.flush()

    def handle_startendtag(self, tag, attrs):
        # <br/>, <hr/>, <a id="..."/>: no content, never opens a dropped element.
        if self.skip_tag is None and tag in BLOCKS:
            self.flush()

    def handle_data(self, data):
        if self.skip_tag is None:
            self.current.append(data)

    def flush(self):
        text = collapse("".join(self.current))
        self.current = []
        if text:
            self.blocks.append(text)

    def close(self):
        super().close()
        self.flush()


def normalise(path):
    """(the page's normalised text, its normalised blocks)."""
    with open(path, encoding="utf-8") as f:
        parser = Normaliser()
        parser.feed(f.read())
        parser.close()
    return " ".join(parser.blocks), parser.blocks


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set", nargs="?", default=os.path.join(here, "postgresql-15.jsonl"))
    ap.add_argument("--html", default=DEFAULT_HTML, help="the manual's html directory")
    args = ap.parse_args()

    if not os.path.isdir(args.html):
        print(f"error: {args.html} not found; install it: apt-get install postgresql-doc-15")
        return 1

    failures = []
    ids = set()
    per_document = collections.Counter()
    per_area = collections.Counter()
    pages = {}
    lines = 0
    checked = []  # (where, document, evidence) of the lines that got that far
    repeated = 0  # evidence found in more than one block of its own document

    with open(args.set, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                failures.append(f"line {number}: empty line")
                continue
            lines += 1
            where = f"line {number}"
            try:
                item = json.loads(line)
            except json.JSONDecodeError as e:
                failures.append(f"{where}: not JSON: {e}")
                continue
            if not isinstance(item, dict) or set(item) != KEYS:
                failures.append(f"{where}: keys must be exactly {sorted(KEYS)}")
                continue
            if not all(isinstance(item[k], str) and item[k].strip() for k in KEYS):
                failures.append(f"{where}: every value must be a non-empty string")
                continue
            where = f"line {number} ({item['id']})"
            if item["id"] in ids:
                failures.append(f"{where}: duplicate id")
            ids.add(item["id"])

            document = item["document"]
            per_document[document] += 1
            per_area[area(document)] += 1
            path = os.path.join(args.html, document)
            if os.path.basename(document) != document or not os.path.isfile(path):
                failures.append(f"{where}: no such document {document!r}")
                continue

            evidence = item["evidence"]
            if evidence != collapse(evidence):
                failures.append(f"{where}: evidence is not whitespace-normalised")
            if not MIN_EVIDENCE <= len(evidence) <= MAX_EVIDENCE:
                failures.append(f"{where}: evidence is {len(evidence)} characters, "
                                f"not {MIN_EVIDENCE}-{MAX_EVIDENCE}")
            if document not in pages:
                pages[document] = normalise(path)
            text, blocks = pages[document]
            if evidence not in text:
                failures.append(f"{where}: evidence not found in {document}: {evidence!r}")
            elif not any(evidence in block for block in blocks):
                failures.append(f"{where}: evidence spans blocks in {document}: {evidence!r}")
            elif sum(evidence in block for block in blocks) > 1:
                repeated += 1
            if evidence.lower() in item["question"].lower():
                failures.append(f"{where}: the question contains the evidence verbatim")
            checked.append((where, document, evidence))

    for document, count in sorted(per_document.items()):
        if count > MAX_PER_DOCUMENT:
            failures.append(f"{document}: {count} questions, at most {MAX_PER_DOCUMENT}")

    # The evidence must identify its document: it may not occur in any other page.
    if checked:
        manual = {}
        for name in sorted(os.listdir(args.html)):
            if name.endswith(".html"):
                manual[name] = pages[name][0] if name in pages else \
                    normalise(os.path.join(args.html, name))[0]
        for where, document, evidence in checked:
            others = [name for name, text in manual.items()
                      if name != document and evidence in text]
            if others:
                failures.append(f"{where}: evidence also occurs in {', '.join(others[:3])}"
                                f"{' ...' if len(others) > 3 else ''}: {evidence!r}")

    for failure in failures:
        print("FAIL", failure)
    print(f"{lines} questions, {len(ids)} ids, {len(per_document)} distinct documents")
    print("by area: " + ", ".join(f"{a} {n}" for a, n in per_area.most_common()))
    print("questions per document: " + ", ".join(
        f"{k}: {v}" for k, v in sorted(collections.Counter(per_document.values()).items())))
    lengths = [len(evidence) for _, _, evidence in checked]
    if lengths:
        print(f"evidence length: {min(lengths)}-{max(lengths)} characters, "
              f"mean {sum(lengths) / len(lengths):.0f}; "
              f"{repeated} found in more than one block of their document (all count)")
    print("OK" if not failures else f"{len(failures)} failures")
    return 0 if not failures else 1


AREAS = [
    ("DDL, queries & syntax", ("ddl-", "queries-", "dml-", "sql-syntax", "limits")),
    ("SQL commands", ("sql-",)),
    ("functions & operators", ("functions",)),
    ("data types", ("datatype-", "arrays", "rangetypes", "rowtypes", "domains")),
    ("configuration", ("runtime-config-",)),
    ("applications", ("app-", "pgbench", "pgupgrade")),
    ("indexes", ("indexes",)),
    ("backup & replication", ("backup", "continuous-archiving", "warm-standby", "hot-standby",
                              "high-availability", "different-replication", "logical-replication")),
    ("tutorial", ("tutorial",)),
    ("concurrency & performance", ("mvcc", "transaction-iso", "explicit-locking", "populate",
                                   "non-durability", "using-explain", "planner-", "parallel",
                                   "when-can-parallel", "jit", "storage-", "wal-", "checksums")),
    ("administration", ("auth-", "client-authentication", "routine-", "logfile", "manage-ag",
                        "server-", "kernel-", "ssl-", "predefined-roles", "role-", "upgrading",
                        "locale", "collation", "monitoring", "progress-")),
    ("server programming", ("plpgsql", "trigger", "event-trigger", "xfunc")),
    ("client interfaces", ("libpq",)),
    ("full text search", ("textsearch",)),
    ("additional modules", ("pgstatstatements", "pgcrypto", "pgtrgm", "postgres-fdw", "hstore")),
]


def area(document):
    """The part of the manual a file belongs to, from its name (for the summary only)."""
    for name, prefixes in AREAS:
        if document.startswith(prefixes):
            return name
    return "other"


if __name__ == "__main__":
    sys.exit(main())
