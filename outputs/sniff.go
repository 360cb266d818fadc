package outputs

import (
	"bytes"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// SniffBytes is how much of a file Sniff looks at (net/http.DetectContentType's own bound).
const SniffBytes = 512

// Image types Sniff recognises by their signatures.
const (
	TypePNG  = "image/png"
	TypeJPEG = "image/jpeg"
	TypeGIF  = "image/gif"
	TypeWebP = "image/webp"
	TypeSVG  = "image/svg+xml"
)

// textByExt are the text types given by extension, and only to content that is UTF-8 text.
var textByExt = map[string]string{
	".csv":      "text/csv",
	".json":     "application/json",
	".md":       "text/markdown",
	".markdown": "text/markdown",
}

// Sniff returns the media type of content whose first bytes are head (at most SniffBytes are
// looked at; head may be a prefix of the file). Images are recognised by their signatures (PNG,
// JPEG, GIF, WebP) or, for SVG, by text starting with an optional BOM, XML declaration and
// whitespace, then "<svg"; the rest is net/http.DetectContentType's answer, except that UTF-8
// text named .csv, .json or .md gets that type. The name alone never makes a type.
func Sniff(name string, head []byte) string {
	head = head[:min(len(head), SniffBytes)]
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return TypePNG
	case bytes.HasPrefix(head, []byte("\xff\xd8\xff")):
		return TypeJPEG
	case bytes.HasPrefix(head, []byte("GIF87a")), bytes.HasPrefix(head, []byte("GIF89a")):
		return TypeGIF
	case len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return TypeWebP
	case isSVG(head):
		return TypeSVG
	}
	t := http.DetectContentType(head)
	if strings.HasPrefix(t, "text/plain") && utf8Prefix(head) {
		if ext, ok := textByExt[strings.ToLower(path.Ext(name))]; ok {
			return ext
		}
	}
	return t
}

// isSVG: UTF-8 text, an optional BOM, whitespace, an optional XML declaration, whitespace,
// then an <svg element.
func isSVG(head []byte) bool {
	b := bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	if !utf8Prefix(b) {
		return false
	}
	b = bytes.TrimLeft(b, " \t\r\n")
	if bytes.HasPrefix(b, []byte("<?xml")) {
		end := bytes.Index(b, []byte("?>"))
		if end < 0 {
			return false
		}
		b = bytes.TrimLeft(b[end+2:], " \t\r\n")
	}
	if !bytes.HasPrefix(b, []byte("<svg")) {
		return false
	}
	// "<svg" then the end of the tag name: a space, ">" or "/" (not "<svgfoo"), or the end of
	// what was read.
	return len(b) == 4 || strings.IndexByte(" \t\r\n>/", b[4]) >= 0
}

// utf8Prefix reports whether b is valid UTF-8 but for a rune cut at its end (b may be the
// first bytes of a longer file).
func utf8Prefix(b []byte) bool {
	if utf8.Valid(b) {
		return true
	}
	// A rune is at most 4 bytes: drop up to 3 trailing bytes of an incomplete one.
	for cut := 1; cut <= 3 && cut <= len(b); cut++ {
		tail := b[len(b)-cut:]
		if utf8.RuneStart(tail[0]) && !utf8.FullRune(tail) {
			return utf8.Valid(b[:len(b)-cut])
		}
	}
	return false
}
