package program

import (
	"regexp"
	"strconv"
	"strings"
)

// locRE matches "main.ts:LINE" with an optional ":COL".
var locRE = regexp.MustCompile(`main\.ts:(\d+)(?::(\d+))?`)

// frameRE matches a stack line that is only an anonymous frame.
var frameRE = regexp.MustCompile(`^\s*at (?:async )?main\.ts:(\d+):(\d+)\s*$`)

// MapText rewrites every "main.ts:LINE:COL" and "main.ts:LINE" in s (an
// error message or stack, with the module's URL already replaced by
// "main.ts") to the user's position. An occurrence preceded by a character
// that can be part of a path or name ("/", ".", "-", letters …) is left
// alone: it names some other file. A stack line that is only an anonymous
// frame at text Prepare wrote ("    at main.ts:12:4", "    at async
// main.ts:1:16": the wrapper's call) is removed.
func (p *Program) MapText(s string) string {
	if p.pieces == nil || !strings.Contains(s, "main.ts:") {
		return s
	}
	if strings.Contains(s, "\n") {
		lines := strings.Split(s, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if p.wrapperFrame(l) {
				continue
			}
			kept = append(kept, l)
		}
		s = strings.Join(kept, "\n")
	}
	var sb strings.Builder
	last := 0
	for _, m := range locRE.FindAllStringSubmatchIndex(s, -1) {
		if m[0] > 0 && partOfName(s[m[0]-1]) {
			continue
		}
		line, err := strconv.Atoi(s[m[2]:m[3]])
		if err != nil {
			continue
		}
		col := 1
		if m[4] >= 0 {
			if col, err = strconv.Atoi(s[m[4]:m[5]]); err != nil {
				continue
			}
		}
		l, c, _ := p.mapPosition(line, col)
		sb.WriteString(s[last:m[0]])
		sb.WriteString("main.ts:")
		sb.WriteString(strconv.Itoa(l))
		if m[4] >= 0 {
			sb.WriteByte(':')
			sb.WriteString(strconv.Itoa(c))
		}
		last = m[1]
	}
	if last == 0 {
		return s
	}
	sb.WriteString(s[last:])
	return sb.String()
}

// wrapperFrame reports whether line is an anonymous stack frame in text
// Prepare wrote.
func (p *Program) wrapperFrame(line string) bool {
	m := frameRE.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	l, err1 := strconv.Atoi(m[1])
	c, err2 := strconv.Atoi(m[2])
	if err1 != nil || err2 != nil {
		return false
	}
	_, _, written := p.mapPosition(l, c)
	return written
}

func partOfName(c byte) bool {
	return c == '/' || c == '.' || c == '-' || c == '_' || c == '$' || c == '@' ||
		c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}
