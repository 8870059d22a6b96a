package cli

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// The command line's own errors: everything cobra and pflag would say in their words (an
// unknown command or flag, a flag without its value, wrong arguments, a missing required flag,
// flags that exclude each other) is said here in the CLI's, as a usage *Error that names the
// offending flag and whose hint names the help page of the command at hand. prepareTree
// installs it on every command of the tree, those added later by other files included.

// prepareTree readies every command of the tree under root:
//   - RunE returns only *Error or usageError (codedRunE);
//   - wrong arguments, missing required flags and exclusive flags set together are usage
//     errors in the CLI's words;
//   - a command group (a command with subcommands and no Run of its own) behaves like every
//     other: run bare, it shows its help on stderr and fails with exit 2 (usage);
//   - a command whose first argument is NAME completes it with the caller's sandboxes.
func (a *app) prepareTree(cmd *cobra.Command) {
	if cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = groupArgs
		cmd.RunE = a.runGroup
	}
	if required, _ := useArgs(cmd); len(required) > 0 && required[0] == "NAME" && cmd.ValidArgsFunction == nil {
		cmd.ValidArgsFunction = a.completeNames
	}
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, argv []string) error {
			if err := check(c, argv); err != nil {
				return argsError(c, argv, err)
			}
			return nil
		}
	}
	if pre := cmd.PreRunE; cmd.Runnable() {
		cmd.PreRunE = func(c *cobra.Command, argv []string) error {
			if err := checkFlags(c); err != nil {
				return err
			}
			if pre != nil {
				return pre(c, argv)
			}
			return nil
		}
	}
	codedRunE(cmd)
	for _, sub := range cmd.Commands() {
		a.prepareTree(sub)
	}
}

// helpHint names the help page of cmd.
func helpHint(cmd *cobra.Command) string {
	return "run `" + cmd.CommandPath() + " --help` for usage"
}

// subcommandNames lists the commands of a group people can run, in cobra's (sorted) order.
func subcommandNames(cmd *cobra.Command) []string {
	var names []string
	for _, sub := range cmd.Commands() {
		if sub.IsAvailableCommand() {
			names = append(names, sub.Name())
		}
	}
	return names
}

// orList joins words as "a, b or c"; andList as "a, b and c".
func orList(words []string) string  { return joinList(words, " or ") }
func andList(words []string) string { return joinList(words, " and ") }

func joinList(words []string, last string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + last + words[len(words)-1]
}

// groupUsage is cobra's usage template without the "sandbox guilds [flags]" line of a group:
// groups are runnable only to fail (runGroup), so their usage is their commands. A command
// that takes arguments and has commands too (events NAME, events rewind) keeps its line: its
// Use says more than its name.
func groupUsage(root *cobra.Command) string {
	const line = "{{if .Runnable}}"
	t := root.UsageTemplate()
	if !strings.Contains(t, line) {
		panic("cobra's usage template changed: groupUsage needs updating")
	}
	return strings.Replace(t, line, "{{if and .Runnable (or (not .HasAvailableSubCommands) (ne .Use .Name))}}", 1)
}

// groupArgs refuses anything but a subcommand after a group: cobra got here because the word
// names none of its commands.
func groupArgs(cmd *cobra.Command, argv []string) error {
	if len(argv) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %s", argv[0], cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's default, which only its own messages apply
	}
	if s := cmd.SuggestionsFor(argv[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", orList(quoteAll(s)))
	}
	return &Error{Code: CodeUsage, Message: msg, Hint: "run `" + cmd.CommandPath() + " --help` for its commands"}
}

func quoteAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = fmt.Sprintf("%q", w)
	}
	return out
}

// runGroup is a group run bare: its help, on stderr (stdout stays for what succeeds), and a
// usage error. With --json only the error document is written.
func (a *app) runGroup(cmd *cobra.Command, _ []string) error {
	if !a.json {
		cmd.SetOut(a.env.Stderr)
		_ = cmd.Help()
		cmd.SetOut(a.env.Stdout)
		a.helpShown = true
	}
	return &Error{Code: CodeUsage,
		Message: fmt.Sprintf("%s needs a command: %s", cmd.CommandPath(), orList(subcommandNames(cmd)))}
}

// useArgs reads the positional arguments a command's Use line declares: "add NAME GUILD_ID"
// requires NAME and GUILD_ID, "create [NAME]" takes an optional NAME. It stops at the first
// flag ("extend NAME --by DURATION").
func useArgs(cmd *cobra.Command) (required, optional []string) {
	words := strings.Fields(cmd.Use)
	if len(words) == 0 {
		return nil, nil
	}
	for _, w := range words[1:] {
		switch {
		case strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[-"):
			return required, optional
		case strings.HasPrefix(w, "["):
			optional = append(optional, strings.Trim(w, "[]."))
		default:
			required = append(required, w)
		}
	}
	return required, optional
}

// argsError says what is wrong with a command's arguments, from its Use line: which argument
// is missing, or which one is too many. Errors that are already the CLI's pass through.
func argsError(cmd *cobra.Command, argv []string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	path := cmd.CommandPath()
	required, optional := useArgs(cmd)
	takes := path + " takes " + strings.Join(slices.Concat(required, bracketAll(optional)), " ")
	if len(required)+len(optional) == 0 {
		takes = path + " takes no arguments"
	}
	var msg string
	switch {
	case len(argv) < len(required):
		msg = fmt.Sprintf("%s: %s is missing", takes, strings.Join(required[len(argv):], " and "))
	case len(argv) > len(required)+len(optional):
		extra := argv[len(required)+len(optional)]
		msg = fmt.Sprintf("%s: unexpected argument %q", takes, extra)
		if strings.HasPrefix(extra, "-") {
			msg += " (after --, every argument is taken literally)"
		}
	default:
		msg = path + ": " + err.Error()
	}
	return &Error{Code: CodeUsage, Message: msg, Hint: helpHint(cmd)}
}

func bracketAll(words []string) []string {
	out := make([]string, len(words))
	for i, w := range words {
		out[i] = "[" + w + "]"
	}
	return out
}

// flagError is the FlagErrorFunc of the tree: pflag's parse errors in the CLI's words.
func (a *app) flagError(cmd *cobra.Command, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e // a flag's own check (durations) already speaks the CLI's words
	}
	var (
		notExist *pflag.NotExistError
		needs    *pflag.ValueRequiredError
		invalid  *pflag.InvalidValueError
		syntax   *pflag.InvalidSyntaxError
	)
	path := cmd.CommandPath()
	e = &Error{Code: CodeUsage, Hint: "run `" + path + " --help` for its flags"}
	switch {
	case errors.As(err, &notExist):
		name := notExist.GetSpecifiedName()
		if group := notExist.GetSpecifiedShortnames(); group != "" {
			e.Message = fmt.Sprintf("unknown flag -%s (in -%s) for %s", name, group, path)
		} else {
			e.Message = fmt.Sprintf("unknown flag --%s for %s", name, path)
			if owners := flagOwners(cmd.Root(), name); len(owners) > 0 {
				e.Message += fmt.Sprintf(" (it is a flag of %s)", orList(owners))
			}
		}
	case errors.As(err, &needs):
		f := needs.GetFlag()
		e.Field = f.Name
		e.Message = fmt.Sprintf("--%s needs a value: %s", f.Name, f.Usage)
	case errors.As(err, &invalid):
		f := invalid.GetFlag()
		e.Field = f.Name
		if f.Value.Type() == "bool" {
			e.Message = fmt.Sprintf("--%s takes no value, or =true or =false; not %q", f.Name, invalid.GetValue())
		} else {
			e.Message = fmt.Sprintf("--%s %q is not valid: %v", f.Name, invalid.GetValue(), errors.Unwrap(invalid))
		}
	case errors.As(err, &syntax):
		e.Message = fmt.Sprintf("%q is not a flag: flags are --name, --name=value or -x", syntax.GetSpecifiedFlag())
	default:
		e.Message = path + ": " + err.Error()
	}
	return e
}

// flagOwners lists the commands of the tree that define a local flag of that name, for "it is
// a flag of sandbox destroy".
func flagOwners(cmd *cobra.Command, name string) []string {
	var out []string
	if cmd.LocalNonPersistentFlags().Lookup(name) != nil {
		out = append(out, cmd.CommandPath())
	}
	for _, sub := range cmd.Commands() {
		out = append(out, flagOwners(sub, name)...)
	}
	return out
}

// cobraMutuallyExclusive is the annotation cobra's MarkFlagsMutuallyExclusive sets on each
// flag of a group (its value: the group's flag names, space-separated). cobra keeps the name
// unexported; the test of `list --owner x --all` fails if it ever changes.
const cobraMutuallyExclusive = "cobra_annotation_mutually_exclusive"

// checkFlags runs before a command, in place of cobra's own checks of required flags and of
// exclusive groups (which then find nothing to say), and says the same in the CLI's words.
func checkFlags(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil {
			return
		}
		if req := f.Annotations[cobra.BashCompOneRequiredFlag]; len(req) > 0 && req[0] == "true" && !f.Changed {
			err = &Error{Code: CodeUsage, Field: f.Name, Hint: helpHint(cmd),
				Message: fmt.Sprintf("%s needs --%s: %s", cmd.CommandPath(), f.Name, strings.TrimSuffix(f.Usage, " (required)"))}
			return
		}
		for _, group := range f.Annotations[cobraMutuallyExclusive] {
			var set []string
			for _, name := range strings.Fields(group) {
				if g := cmd.Flags().Lookup(name); g != nil && g.Changed {
					set = append(set, "--"+name)
				}
			}
			if len(set) > 1 {
				err = &Error{Code: CodeUsage, Field: f.Name, Hint: helpHint(cmd),
					Message: fmt.Sprintf("%s cannot be used together: choose one", andList(set))}
				return
			}
		}
	})
	return err
}

// strictHelp makes `sandbox help TOPIC` refuse a topic that names no command, as running the
// command would, instead of cobra's "Unknown help topic" and exit 0.
func strictHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd()
	for _, help := range root.Commands() {
		if help.Name() != "help" || help.Run == nil {
			continue
		}
		show := help.Run
		help.Run = nil
		help.RunE = func(c *cobra.Command, argv []string) error {
			target, rest, err := root.Find(argv)
			if err == nil {
				for _, w := range rest {
					if !strings.HasPrefix(w, "-") {
						err = groupArgs(target, []string{w})
						break
					}
				}
			}
			if err != nil {
				return err
			}
			show(c, argv)
			return nil
		}
	}
}
