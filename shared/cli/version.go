package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"
)

// version is the CLI's version when the build stamps one; `make build` does:
//
//	go build -ldflags "-X github.com/botplatform/discord-sandboxes/shared/cli.version=v1.4.0" ./cmd/sandbox
//
// Unstamped, the version is the main module's from the build info: the tag of a
// `go install ...@v1.4.0`, "devel" for a build from a checkout.
var version string

// VersionInfo is what `sandbox version` says (its --json document).
type VersionInfo struct {
	Version string `json:"version"`
	// Commit, CommitTime and Modified describe the checkout the binary was built from, when
	// the build recorded it (go build's -buildvcs): empty, zero and false otherwise.
	Commit     string `json:"commit"`
	CommitTime string `json:"commit_time"`
	Modified   bool   `json:"modified"`
	Go         string `json:"go"`
	Platform   string `json:"platform"`
}

// readVersion combines the stamped version with the build info of the running binary.
func readVersion() VersionInfo {
	info, _ := debug.ReadBuildInfo()
	return versionOf(version, info)
}

// versionOf is readVersion's rule, apart from the process: stamped wins over the module
// version; a module version of "(devel)" or none is "devel".
func versionOf(stamped string, info *debug.BuildInfo) VersionInfo {
	v := VersionInfo{Version: stamped, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info == nil {
		info = &debug.BuildInfo{}
	}
	if info.GoVersion != "" {
		v.Go = info.GoVersion
	}
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" || v.Version == "(devel)" {
		v.Version = "devel"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.CommitTime = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of sandbox (also: sandbox --version)",
		Long: "version prints the CLI's version, the commit it was built from and when that commit was\n" +
			"made (when the build recorded them), and the Go toolchain and platform.",
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return a.printVersion() },
	}
}

// printVersion is `sandbox version` and `sandbox --version`.
func (a *app) printVersion() error {
	v := readVersion()
	if a.json {
		return writeJSONDoc(a.env.Stdout, v)
	}
	w := a.env.Stdout
	fmt.Fprintf(w, "sandbox %s\n", v.Version)
	var fields [][2]string
	if v.Commit != "" {
		commit := v.Commit
		if v.Modified {
			commit += " (with uncommitted changes)"
		}
		fields = append(fields, [2]string{"commit", commit})
	}
	if t, err := time.Parse(time.RFC3339, v.CommitTime); err == nil {
		fields = append(fields, [2]string{"committed", formatTime(t, a.loc())})
	}
	fields = append(fields, [2]string{"go", v.Go + " " + v.Platform})
	writeFields(w, a.outStyle(), "  ", fields)
	return nil
}
