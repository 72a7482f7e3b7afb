package webserver

import (
	"errors"
	"html"
	"io"
	"io/fs"
	"net/url"
	"slices"
	"strings"
)

// maxListing caps the entries of one listing, so that a huge directory
// cannot make one response of unbounded size.
const maxListing = 10000

// serveListing answers with an HTML page listing the directory's entries,
// sorted by name, directories marked with a trailing slash. Listings are
// rare and small, so this path allocates freely and builds the whole page
// before sending it.
func (c *conn) serveListing(dir fs.File, name string) error {
	rd, ok := dir.(fs.ReadDirFile)
	if !ok {
		c.writeError(403, false)
		return nil
	}
	entries, err := rd.ReadDir(maxListing)
	if err != nil && !errors.Is(err, io.EOF) {
		c.srv.cfg.ErrorLog.Error("webserver: read directory", "name", name, "err", err)
		c.writeError(500, false)
		return nil
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })

	title := "/"
	if name != "." {
		title = "/" + name + "/"
	}
	var page strings.Builder
	page.WriteString("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of ")
	page.WriteString(html.EscapeString(title))
	page.WriteString("</title></head>\n<body><h1>Index of ")
	page.WriteString(html.EscapeString(title))
	page.WriteString("</h1>\n<ul>\n")
	if name != "." {
		page.WriteString("<li><a href=\"../\">../</a></li>\n")
	}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() {
			n += "/"
		}
		// PathEscape keeps the link relative and inert: a name holding
		// ':' or '?' cannot turn into a scheme or a query.
		href := (&url.URL{Path: n}).EscapedPath()
		if strings.Contains(strings.SplitN(href, "/", 2)[0], ":") {
			href = "./" + href
		}
		page.WriteString("<li><a href=\"")
		page.WriteString(html.EscapeString(href))
		page.WriteString("\">")
		page.WriteString(html.EscapeString(n))
		page.WriteString("</a></li>\n")
	}
	page.WriteString("</ul></body></html>\n")

	body := page.String()
	c.appendResponseHead(200)
	c.appendField("Content-Type", "text/html; charset=utf-8")
	c.appendContentLength(int64(len(body)))
	c.appendField("Cache-Control", "no-cache")
	c.endHead()
	c.status = 200
	if c.req.method == methodHead {
		return nil
	}
	c.bodySent = int64(len(body))
	for len(body) > 0 {
		free := cap(c.wbuf) - len(c.wbuf)
		if free == 0 {
			if err := c.flush(); err != nil {
				return err
			}
			continue
		}
		k := min(free, len(body))
		c.wbuf = append(c.wbuf, body[:k]...)
		body = body[k:]
	}
	return nil
}
