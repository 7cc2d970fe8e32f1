package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/infergo/infergo/models"
)

// CacheCmd manages the Hugging Face cache.
type CacheCmd struct {
	Ls CacheLsCmd `cmd:"" help:"List cached repos, their revisions and sizes (like huggingface-cli scan-cache)."`
	Rm CacheRmCmd `cmd:"" help:"Remove a model, or one revision of it, and the blobs nothing else uses."`
}

// CacheLsCmd lists the cache.
type CacheLsCmd struct {
	Verbose      bool `short:"v" help:"One line per revision."`
	CacheDirFlag `embed:""`
}

// Run implements the command.
func (c *CacheLsCmd) Run() error { return c.run(os.Stdout, time.Now()) }

func (c *CacheLsCmd) run(w io.Writer, now time.Time) error {
	start := time.Now()
	cache := models.NewCache(c.cacheDir())
	repos, err := cache.Scan()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	if c.Verbose {
		fmt.Fprintln(tw, "REPO ID\tREPO TYPE\tREVISION\tSIZE ON DISK\tNB FILES\tLAST_MODIFIED\tREFS\tLOCAL PATH")
		fmt.Fprintln(tw, "-------\t---------\t--------\t------------\t--------\t-------------\t----\t----------")
		for _, r := range repos {
			for _, rev := range r.Revisions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%12s\t%8d\t%s\t%s\t%s\n", r.ID, r.Type, rev.Commit, humanBytes(rev.Size), rev.Files,
					timeSince(now, rev.LastModified), strings.Join(rev.Refs, ", "), rev.Path)
			}
		}
	} else {
		fmt.Fprintln(tw, "REPO ID\tREPO TYPE\tSIZE ON DISK\tNB FILES\tLAST_MODIFIED\tREFS\tLOCAL PATH")
		fmt.Fprintln(tw, "-------\t---------\t------------\t--------\t-------------\t----\t----------")
		for _, r := range repos {
			fmt.Fprintf(tw, "%s\t%s\t%12s\t%8d\t%s\t%s\t%s\n", r.ID, r.Type, humanBytes(r.Size), r.Files,
				timeSince(now, r.LastModified), strings.Join(r.Refs(), ", "), r.Path)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var total int64
	incomplete := 0
	for _, r := range repos {
		total += r.Size
		incomplete += r.Incomplete
	}
	fmt.Fprintf(w, "\nDone in %.1fs. Scanned %d repo(s) in %s for a total of %s.\n", time.Since(start).Seconds(), len(repos), cache.Root(), humanBytes(total))
	if incomplete > 0 {
		fmt.Fprintf(w, "%d interrupted download(s) will resume on the next pull.\n", incomplete)
	}
	return nil
}

// timeSince formats an age like huggingface_hub's _format_timesince.
func timeSince(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 20*time.Second:
		return "a few seconds ago"
	case d < 90*time.Minute:
		return plural(int(d.Round(time.Minute)/time.Minute), "minute")
	case d < 36*time.Hour:
		return plural(int(d.Round(time.Hour)/time.Hour), "hour")
	case d < 45*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day")
	case d < 540*24*time.Hour:
		return plural(int(d/(30*24*time.Hour)), "month")
	}
	return plural(int(d/(365*24*time.Hour)), "year")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit + " ago"
	}
	return fmt.Sprintf("%d %ss ago", n, unit)
}

// CacheRmCmd removes a model or one of its revisions.
type CacheRmCmd struct {
	Model        string `arg:"" name:"MODEL_ID" help:"Hub model id (org/name)."`
	Revision     string `help:"Remove only this revision: a ref (main), a commit or a commit prefix of 7+ characters. Default: the whole repo."`
	CacheDirFlag `embed:""`
}

// Run implements the command.
func (c *CacheRmCmd) Run() error { return c.run(os.Stdout) }

func (c *CacheRmCmd) run(w io.Writer) error {
	cache := models.NewCache(c.cacheDir())
	res, err := cache.Remove(c.Model, c.Revision)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "removed %s: %d revision(s), %d ref(s), %d blob(s), %s freed\n",
		c.Model, len(res.Snapshots), len(res.Refs), res.Blobs, humanBytes(res.Freed))
	if res.Kept > 0 {
		fmt.Fprintf(w, "kept %d blob(s) that a running download holds\n", res.Kept)
	}
	return nil
}
