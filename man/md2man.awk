# md2man.awk: turns one of the project's Markdown documents into a man page, so the page and
# the document never disagree. Handles what the documents use: headings, paragraphs, "-" and
# "1." lists, fenced code blocks, tables (each row becomes a tagged paragraph: the first cell,
# then "Header: cell" for the others), `code`, **bold** and [links](target).
#   awk -v title=KESTREL.CONF -v section=5 -v name="kestrel.conf - ..." -v source="..." \
#       -f md2man.awk docs/configuration.md
function inline(s,    out, pre, mid, start, len) {
  gsub(/\\/, "\\e", s)
  gsub(/^\./, "\\\\\\&.", s)
  gsub(/^'/, "\\\\\\&'", s)
  s = gensub_links(s)
  out = ""
  while (match(s, /`[^`]*`/)) {
    start = RSTART; len = RLENGTH     # bold() below runs match() too
    pre = substr(s, 1, start - 1)
    mid = substr(s, start + 1, len - 2)
    gsub(/-/, "\\-", mid)
    out = out bold(pre) "\\fB" mid "\\fR"
    s = substr(s, start + len)
  }
  return out bold(s)
}
function bold(s,    out) {
  out = ""
  while (match(s, /\*\*[^*]+\*\*/)) {
    out = out substr(s, 1, RSTART - 1) "\\fB" substr(s, RSTART + 2, RLENGTH - 4) "\\fR"
    s = substr(s, RSTART + RLENGTH)
  }
  return out s
}
# [text](target) -> text; a link to another document keeps its file name.
function gensub_links(s,    out, link, text, target) {
  out = ""
  while (match(s, /\[[^]]*\]\([^)]*\)/)) {
    link = substr(s, RSTART, RLENGTH)
    text = link
    sub(/\]\(.*$/, "", text)
    sub(/^\[/, "", text)
    target = link
    sub(/^.*\]\(/, "", target)
    sub(/\)$/, "", target)
    if (target ~ /^#/ || target == text || "`" target "`" == text)
      out = out substr(s, 1, RSTART - 1) text
    else
      out = out substr(s, 1, RSTART - 1) text " (" target ")"
    s = substr(s, RSTART + RLENGTH)
  }
  return out s
}
function cells(line, arr,    n, i) {
  sub(/^ *\|/, "", line)
  sub(/\| *$/, "", line)
  n = split(line, arr, /\|/)
  for (i = 1; i <= n; i++) {
    sub(/^ +/, "", arr[i])
    sub(/ +$/, "", arr[i])
  }
  return n
}
function end_paragraph() {
  if (in_list) { print ".RE"; in_list = 0 }
}
BEGIN {
  print ".\\\" Generated from the Markdown document by md2man.awk; edit the document instead."
  printf ".TH %s %s \"\" \"%s\" \"%s\"\n", title, section, source, manual
  print ".SH NAME"
  print name
  first_heading = 1
}
/^```/ {
  if (in_code) { print ".fi"; print ".RE"; in_code = 0 }
  else { end_paragraph(); print ".PP"; print ".RS 4"; print ".nf"; in_code = 1 }
  next
}
in_code {
  line = $0
  gsub(/\\/, "\\e", line)
  if (line ~ /^[.']/) line = "\\&" line
  print line
  next
}
/^# / {
  if (first_heading) { first_heading = 0; print ".SH DESCRIPTION"; next }
}
/^#+ / {
  end_paragraph()
  level = index($0, " ") - 1
  heading = substr($0, level + 2)
  if (level <= 2) { heading = toupper(inline(heading)); gsub(/\\FB/, "\\fB", heading); gsub(/\\FR/, "\\fR", heading); print ".SH \"" heading "\"" }
  else print ".SS \"" inline(heading) "\""
  in_table = 0
  next
}
/^\|/ {
  if (!in_table) {
    end_paragraph()
    nheaders = cells($0, headers)
    in_table = 1
    next
  }
  if ($0 ~ /^\|[-: |]+\|$/) next
  n = cells($0, row)
  print ".TP"
  print inline(row[1])
  for (i = 2; i <= n; i++) {
    if (i > 2) print ".br"
    print (i < nheaders || nheaders > 2 ? inline(headers[i]) ": " : "") inline(row[i])
  }
  next
}
{ in_table = 0 }
/^[ \t]*$/ { blank = 1; next }
/^(- |[0-9]+\. )/ {
  if (!in_list) { print ".RS 2"; in_list = 1 }
  item = $0
  if (item ~ /^- /) { mark = "\\(bu"; sub(/^- /, "", item) }
  else { mark = item; sub(/ .*$/, "", mark); sub(/^[0-9]+\. /, "", item) }
  print ".IP " mark " 3"
  print inline(item)
  blank = 0
  next
}
in_list && /^ +/ && !blank {
  line = $0
  sub(/^ +/, "", line)
  print inline(line)
  next
}
{
  if (blank || in_list) { end_paragraph(); print ".PP" }
  else if (NR == 1) print ".PP"
  blank = 0
  line = $0
  sub(/^ +/, "", line)
  print inline(line)
}
END { end_paragraph() }
