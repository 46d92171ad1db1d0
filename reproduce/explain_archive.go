package reproduce

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
)

// explainGzip compares the gzip headers (a timestamp or file name in the
// header is a classic reproducibility bug) and then the decompressed data.
func explainGzip(e *Explanation, a, b []byte, lim Limits, depth int) {
	ha, da, errA := gunzip(a, lim.MaxFileBytes)
	hb, db, errB := gunzip(b, lim.MaxFileBytes)
	if errA != nil || errB != nil {
		e.note(lim, fmt.Sprintf("cannot decompress: A: %v, B: %v", errA, errB))
		return
	}
	if !ha.ModTime.Equal(hb.ModTime) {
		e.note(lim, fmt.Sprintf("gzip header time: %s in A, %s in B (set it from SOURCE_DATE_EPOCH or zero it)", ha.ModTime.UTC(), hb.ModTime.UTC()))
	}
	if ha.Name != hb.Name {
		e.note(lim, fmt.Sprintf("gzip header file name: %q in A, %q in B", ha.Name, hb.Name))
	}
	if ha.OS != hb.OS {
		e.note(lim, fmt.Sprintf("gzip header OS byte: %d in A, %d in B", ha.OS, hb.OS))
	}
	if ha.Comment != hb.Comment {
		e.note(lim, "gzip header comment differs")
	}
	if !bytes.Equal(da, db) {
		e.member(lim, explain(e.Path+"!", da, db, lim, depth+1))
	} else if len(e.Summary) == 0 {
		e.note(lim, "the same data, compressed differently (compression level or implementation)")
	}
}

func gunzip(b []byte, limit int64) (*gzip.Header, []byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	zr.Multistream(false)
	data, err := io.ReadAll(io.LimitReader(zr, limit))
	if err != nil {
		return nil, nil, err
	}
	h := zr.Header
	return &h, data, nil
}

// member is one archive member as read.
type archived struct {
	header string // the metadata that matters for reproducibility, as text
	data   []byte
}

// explainTar compares members by name: added, removed, metadata and order
// differences, and the content of those that differ.
func explainTar(e *Explanation, a, b []byte, lim Limits, depth int) {
	ma, orderA, errA := readTar(a, lim)
	mb, orderB, errB := readTar(b, lim)
	if errA != nil || errB != nil {
		e.note(lim, fmt.Sprintf("cannot read the tar: A: %v, B: %v", errA, errB))
		return
	}
	compareMembers(e, ma, mb, lim, depth)
	if len(e.Summary) == 0 && len(e.Members) == 0 && fmt.Sprint(orderA) != fmt.Sprint(orderB) {
		e.note(lim, "the same members in a different order (sort entries when archiving)")
	}
}

func readTar(b []byte, lim Limits) (map[string]archived, []string, error) {
	tr := tar.NewReader(bytes.NewReader(b))
	out := map[string]archived{}
	var order []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, order, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if len(out) >= lim.MaxMembers {
			return nil, nil, fmt.Errorf("more than %d members", lim.MaxMembers)
		}
		data, err := io.ReadAll(io.LimitReader(tr, lim.MaxFileBytes))
		if err != nil {
			return nil, nil, err
		}
		meta := fmt.Sprintf("type %c, mode %o, uid %d, gid %d, owner %s:%s, mtime %s, link %q",
			h.Typeflag, h.Mode, h.Uid, h.Gid, h.Uname, h.Gname, h.ModTime.UTC().Format("2006-01-02T15:04:05Z"), h.Linkname)
		out[h.Name] = archived{header: meta, data: data}
		order = append(order, h.Name)
	}
}

// explainZip compares a zip (or jar) member by member.
func explainZip(e *Explanation, a, b []byte, lim Limits, depth int) {
	ma, errA := readZip(a, lim)
	mb, errB := readZip(b, lim)
	if errA != nil || errB != nil {
		e.note(lim, fmt.Sprintf("cannot read the zip: A: %v, B: %v", errA, errB))
		return
	}
	compareMembers(e, ma, mb, lim, depth)
	if len(e.Summary) == 0 && len(e.Members) == 0 {
		e.note(lim, "the same members, stored differently (order, compression or extra fields)")
	}
}

func readZip(b []byte, lim Limits) (map[string]archived, error) {
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		return nil, err
	}
	if len(zr.File) > lim.MaxMembers {
		return nil, fmt.Errorf("more than %d members", lim.MaxMembers)
	}
	out := map[string]archived{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		data, err := io.ReadAll(io.LimitReader(rc, lim.MaxFileBytes))
		_ = rc.Close()
		if err != nil {
			return nil, err
		}
		meta := fmt.Sprintf("mode %v, modified %s, method %d", f.Mode(), f.Modified.UTC().Format("2006-01-02T15:04:05Z"), f.Method)
		out[f.Name] = archived{header: meta, data: data}
	}
	return out, nil
}

// compareMembers reports members only in A or B, metadata that differs, and
// explains the content of members that differ.
func compareMembers(e *Explanation, ma, mb map[string]archived, lim Limits, depth int) {
	sorted := unionKeys(ma, mb)
	for _, n := range sorted {
		x, inA := ma[n]
		y, inB := mb[n]
		switch {
		case !inA:
			e.note(lim, fmt.Sprintf("member %s only in B", n))
		case !inB:
			e.note(lim, fmt.Sprintf("member %s only in A", n))
		default:
			if x.header != y.header {
				e.note(lim, fmt.Sprintf("member %s: %s in A; %s in B", n, x.header, y.header))
			}
			if !bytes.Equal(x.data, y.data) {
				e.member(lim, explain(e.Path+"!"+n, x.data, y.data, lim, depth+1))
			}
		}
	}
}
