#!/usr/bin/env python3
"""Doxygen INPUT_FILTER for libvmmem's headers (scons doc).

The headers keep plain C comments (the project's style); this turns them
into Doxygen comments on the fly, without moving a line (so warnings point
at the right one):
  - a comment that starts a line documents what follows it (/* -> /**);
  - a comment after code on the same line documents that code (/**<);
  - the first comment of a file documents the file (@file);
  - one comment over a run of declarations with no blank line between
    (two functions, a family of macros) documents each of them: the run
    becomes a Doxygen member group (DISTRIBUTE_GROUP_DOC in the Doxyfile).
"""
import re
import sys


def comment_spans(lines):
    """Per line: (starts a comment at column 0..indent, ends inside one)."""
    in_c = False
    ends_inside = []
    for line in lines:
        pos = 0
        while True:
            if in_c:
                e = line.find('*/', pos)
                if e < 0:
                    break
                in_c = False
                pos = e + 2
            else:
                s = line.find('/*', pos)
                if s < 0:
                    break
                in_c = True
                pos = s + 2
        ends_inside.append(in_c)
    return ends_inside


def statements(block):
    """Top-level declarations in block (lines): their count, and whether
    any has a brace (a struct or an inline function body)."""
    text = '\n'.join(block)
    text = re.sub(r'/\*.*?\*/', '', text, flags=re.S)
    n = 0
    braces = '{' in text
    for line in text.split('\n'):
        s = line.strip()
        if s.startswith('#define'):
            n += 1
    body = '\n'.join(l for l in text.split('\n') if not l.strip().startswith('#'))
    n += body.count(';')
    return n, braces


def expand_errno_map(lines):
    """The VMMEM_E* codes are made by an X-macro: write them out (on the
    line that expands it, so no line moves), each with its text."""
    codes = re.findall(r'XX\((\w+), (-?\d+), ("[^"]*")\)', '\n'.join(lines))
    for i, line in enumerate(lines):
        if line.strip() == 'VMMEM_ERRNO_MAP(VMMEM__ERR_ENUM)' and codes:
            lines[i] = ' '.join('VMMEM_E%s = %s, /**< %s */' % (n, v, t.strip('"'))
                                for n, v, t in codes)
    return lines


def convert(text):
    lines = expand_errno_map(text.split('\n'))
    inside = comment_spans(lines)
    out = list(lines)
    closes = set()  # lines that end a member group
    seen_first = False
    i = 0
    while i < len(lines):
        prev_inside = inside[i - 1] if i > 0 else False
        line = lines[i]
        if prev_inside:
            i += 1
            continue
        m = re.match(r'^(\s*)/\*(?![*!])(.*)$', line)
        if m:
            tag = '/** ' if seen_first else '/** @file '
            first = not seen_first
            seen_first = True
            # where the comment ends, and the declarations after it
            j = i
            while inside[j]:
                j += 1
            k = j + 1
            while (k < len(lines) and lines[k].strip() and
                   not lines[k].lstrip().startswith(('/*', '}'))):
                k += 1
            n, braces = statements(lines[j + 1:k])
            # (no group across #if/#else: the preprocessor would drop one end)
            cond = any(re.match(r'\s*#\s*(if|el|endif)', l) for l in lines[j + 1:k])
            group = not first and n >= 2 and not braces and not cond
            out[i] = m.group(1) + ('/**@{*/ ' if group else '') + tag + m.group(2)
            if group:
                closes.add(k)  # the close starts the line after the run
            i += 1
            continue
        m = re.match(r'^(\s*\S.*?)/\*(?![*!<])(.*)$', line)
        if m and m.group(1).count('"') % 2 == 0:  # not inside a string
            out[i] = m.group(1) + '/**<' + m.group(2)
        i += 1
    for c in closes:
        if c < len(out):
            out[c] = '/**@}*/ ' + out[c]
        else:
            out.append('/**@}*/')
    return '\n'.join(out)


if __name__ == '__main__':
    with open(sys.argv[1], encoding='utf-8') as f:
        sys.stdout.write(convert(f.read()))
