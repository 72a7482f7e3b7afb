package webserver

import (
	"path"
	"strings"
)

// builtinTypes maps lower-case file extensions to media types. The table is
// built in rather than taken from package mime, whose answers depend on the
// host's /etc/mime.types: a server's Content-Type should not change with the
// machine it runs on. Config.ContentTypes adds to it or overrides it.
var builtinTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".htm":   "text/html; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".json":  "application/json",
	".map":   "application/json",
	".txt":   "text/plain; charset=utf-8",
	".md":    "text/markdown; charset=utf-8",
	".csv":   "text/csv; charset=utf-8",
	".xml":   "application/xml",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".jpg":   "image/jpeg",
	".jpeg":  "image/jpeg",
	".gif":   "image/gif",
	".webp":  "image/webp",
	".avif":  "image/avif",
	".ico":   "image/vnd.microsoft.icon",
	".bmp":   "image/bmp",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".ttf":   "font/ttf",
	".otf":   "font/otf",
	".pdf":   "application/pdf",
	".wasm":  "application/wasm",
	".zip":   "application/zip",
	".gz":    "application/gzip",
	".tar":   "application/x-tar",
	".mp3":   "audio/mpeg",
	".ogg":   "audio/ogg",
	".wav":   "audio/wav",
	".mp4":   "video/mp4",
	".webm":  "video/webm",
	".bin":   "application/octet-stream",
}

// defaultType is sent for unknown extensions, as nginx's default_type does;
// the server does not sniff content.
const defaultType = "application/octet-stream"

// contentTypes is the server's resolved table: the built-in one merged with
// the configuration's, keys lower case with the dot.
type contentTypes map[string]string

func newContentTypes(extra map[string]string) contentTypes {
	t := make(contentTypes, len(builtinTypes)+len(extra))
	for k, v := range builtinTypes {
		t[k] = v
	}
	for k, v := range extra {
		if !strings.HasPrefix(k, ".") {
			k = "." + k
		}
		t[strings.ToLower(k)] = v
	}
	return t
}

// lookup returns the media type for the fs name; upper-case extensions are
// folded in a stack buffer so that the lookup does not allocate.
func (t contentTypes) lookup(name string) string {
	ext := path.Ext(name)
	if ext == "" {
		return defaultType
	}
	if v, ok := t[ext]; ok {
		return v
	}
	var low [16]byte
	if len(ext) > len(low) {
		return defaultType
	}
	for i := range len(ext) {
		c := ext[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	if v, ok := t[string(low[:len(ext)])]; ok {
		return v
	}
	return defaultType
}
