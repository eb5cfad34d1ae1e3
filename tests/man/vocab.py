#!/usr/bin/env python3
"""vocab.py - the words the man pages must document, read from src/, and
the words a page documents, read from its roff (tests/man/run.sh).

  vocab.py conf-keys SRC_DIR      every key src/config.c accepts, dotted
  vocab.py list SRC_DIR WHAT      rule-keys limit-keys conditions key-parts
                                  stages actions vars commands explain
                                  probe-options
  vocab.py terms PAGE [SECTION]   the terms of the page's .TP/.TQ entries,
                                  only those under SECTION (a .SH or .SS
                                  title) when given

Each prints one word a line, sorted. The source is parsed, not compiled:
the tables are read where the code keeps them, so a new key or condition
shows up here without anyone editing this file. A parse that finds
nothing exits 1, so a refactoring of the tables cannot make the tests
pass vacuously.
"""
import os
import re
import sys


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def strings(body):
    return re.findall(r'"([^"\\]*)"', body)


def arrays(text):
    """static const char *const NAME[] = { "a", "b", NULL };"""
    out = {}
    for m in re.finditer(r'static const char \*const (\w+)\[\w*\]\s*=\s*'
                         r'\{(.*?)\};', text, re.S):
        out[m.group(1)] = strings(m.group(2))
    return out


def designated(text, table, prefix):
    """The names in table[] = { [PREFIX_X] = { "name", ... }, ... };"""
    m = re.search(r'\b' + table + r'\[\w+\]\s*=\s*\{(.*?)\n\};', text, re.S)
    if m is None:
        return []
    return re.findall(r'\[' + prefix + r'_\w+\]\s*=\s*\{\s*"([^"]+)"',
                      m.group(1))


def conf_keys(src):
    """
    config.c lists each group's keys in a *_keys array and opens each
    group with group(l, parent, "name", "dotted.path", name_keys). A key
    whose dotted path is itself a group is a group, not a setting.
    """
    text = read(os.path.join(src, "config.c"))
    arr = arrays(text)
    paths = {}
    for m in re.finditer(r'\bgroup\(\s*\w+,\s*\w+,\s*"(\w+)",\s*'
                         r'"([\w.]+)",\s*(\w+)\s*\)', text):
        paths[m.group(3)] = m.group(2)
    keys = set()
    for name, path in paths.items():
        for k in arr.get(name, []):
            keys.add(path + "." + k)
    return sorted(k for k in keys if k not in paths.values())


def lists(src, what):
    rules = read(os.path.join(src, "rules.c"))
    if what == "rule-keys":
        return arrays(rules).get("rule_keys", [])
    if what == "limit-keys":
        return arrays(rules).get("limit_keys", [])
    if what == "conditions":
        return designated(rules, "cond_defs", "COND")
    if what == "key-parts":
        return designated(rules, "key_defs", "KEY")
    stage = read(os.path.join(src, "stage.c"))
    if what == "stages":
        return arrays(stage).get("stage_names", [])
    if what == "actions":
        return arrays(stage).get("action_names", [])
    if what == "vars":
        reply = read(os.path.join(src, "reply.c"))
        return ["%{" + v + "}" for v in arrays(reply).get("var_names", [])]
    if what == "commands":
        # main.c: strcmp(cmd, "run") ...; the --long/-h spellings are
        # aliases documented with their command.
        main = read(os.path.join(src, "main.c"))
        return [c for c in re.findall(r'strcmp\(cmd,\s*"([^"]+)"\)', main)
                if not c.startswith("-")]
    if what == "explain":
        ex = read(os.path.join(src, "explain.c"))
        return re.findall(r'strcmp\(name,\s*"([^"]+)"\)', ex)
    if what == "probe-options":
        pr = read(os.path.join(src, "probe.c"))
        return re.findall(r'"(--[a-z][a-z-]*)"', pr)
    raise SystemExit("vocab.py: unknown list " + what)


def unroff(s):
    """Roff text of one term to plain text."""
    s = re.sub(r'\\f[BIRP]|\\f\[\w*\]', '', s)
    s = s.replace(r'\(dq', '"').replace(r'\(aq', "'")
    s = s.replace(r'\-', '-').replace(r'\&', '').replace(r'\|', '')
    s = s.replace(r'\e', '\\').replace('\\ ', ' ')
    return s


def macro_words(line):
    """The words of a macro line such as .BR "a b" c, quotes honoured."""
    body = line.split(None, 1)[1] if " " in line else ""
    return [m.group(1) if m.group(1) is not None else m.group(2)
            for m in re.finditer(r'"((?:[^"]|"")*)"|(\S+)', body)]


def terms(page, section):
    """
    The first word of each .TP/.TQ entry's tag line, without roff and
    quotes; for alternating-font macros (.BR, .BI ...) the words are
    joined, so ".BI client= ip" gives "client=ip" and its first word
    up to '=' is "client".
    """
    out = []
    cur = None
    tag_next = False
    for line in read(page).splitlines():
        m = re.match(r'\.S[HS]\s+(.*)', line)
        if m:
            cur = unroff(m.group(1)).strip('"').strip()
            tag_next = False
            continue
        if re.match(r'\.(TP|TQ)\b', line):
            tag_next = True
            continue
        if not tag_next or line.startswith(".\\\""):
            continue
        tag_next = False
        if line.startswith("."):
            words = macro_words(line)
            if re.match(r'\.(BR|BI|IB|RB|IR|RI)\b', line):
                text = "".join(words)
            else:
                text = " ".join(words)
        else:
            text = line
        text = unroff(text).strip()
        if not text:
            continue
        word = text.split()[0].rstrip(",")
        word = word.strip('"')
        if section is None or cur == section:
            out.append(word)
    return out


def main(argv):
    if len(argv) >= 3 and argv[1] == "conf-keys":
        words = conf_keys(argv[2])
    elif len(argv) == 4 and argv[1] == "list":
        words = lists(argv[2], argv[3])
    elif len(argv) in (3, 4) and argv[1] == "terms":
        words = terms(argv[2], argv[3] if len(argv) == 4 else None)
    else:
        sys.stderr.write(__doc__)
        return 2
    words = sorted(set(words))
    for w in words:
        print(w)
    return 0 if words else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
