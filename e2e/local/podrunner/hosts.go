package main

// The pods' DNS names as /etc/hosts lines, in a block marked with the
// node's name so that one runner's block is replaced whole and a crashed
// run's block can be removed (podrunner -clean-hosts).

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

func blockMarkers(node string) (begin, end string) {
	return "# BEGIN runnel-podrunner " + node, "# END runnel-podrunner " + node
}

// withBlock returns hosts without node's block, then with lines as its
// block (no block when lines is empty).
func withBlock(hosts []byte, node string, lines []string) []byte {
	begin, end := blockMarkers(node)
	var out bytes.Buffer
	inside := false
	for _, line := range strings.SplitAfter(string(hosts), "\n") {
		trimmed := strings.TrimRight(line, "\n")
		switch {
		case trimmed == begin:
			inside = true
		case trimmed == end:
			inside = false
		case !inside && line != "":
			out.WriteString(line)
			if !strings.HasSuffix(line, "\n") {
				out.WriteByte('\n')
			}
		}
	}
	if len(lines) > 0 {
		fmt.Fprintln(&out, begin)
		for _, line := range lines {
			fmt.Fprintln(&out, line)
		}
		fmt.Fprintln(&out, end)
	}
	return out.Bytes()
}

// hostsLines renders names (name -> addresses) as `address name` lines,
// sorted.
func hostsLines(names map[string][]string) []string {
	var lines []string
	for name, addresses := range names {
		for _, address := range addresses {
			lines = append(lines, address+" "+name)
		}
	}
	sort.Strings(lines)
	return lines
}

// writeBlock puts lines as node's block into the hosts file at path, under
// an exclusive lock (another runner may be writing its own block): a new
// file renamed over the old one, so readers never see half a file, or a
// write in place when the file cannot be replaced (a bind mount).
func writeBlock(path, node string, lines []string) error {
	lock, err := os.OpenFile(path+".runnel-podrunner.lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated := withBlock(old, node, lines)
	if bytes.Equal(old, updated) {
		return nil
	}
	mode := os.FileMode(0o644)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".hosts.runnel-podrunner.*")
	if err == nil {
		_, werr := tmp.Write(updated)
		cerr := tmp.Close()
		if werr == nil && cerr == nil && os.Chmod(tmp.Name(), mode) == nil && os.Rename(tmp.Name(), path) == nil {
			return nil
		}
		os.Remove(tmp.Name())
	}
	return os.WriteFile(path, updated, mode)
}
