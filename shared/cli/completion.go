package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// completionShells are the shells `sandbox completion` writes a script for.
var completionShells = []string{"bash", "zsh", "fish", "powershell"}

func (a *app) completionCommand() *cobra.Command {
	var noDescriptions bool
	cmd := &cobra.Command{
		Use:   "completion SHELL",
		Short: "Print the shell completion script for bash, zsh, fish or powershell",
		Long: "completion prints a script that makes the shell complete sandbox's commands and flags\n" +
			"(cobra's generators). Load it in the current shell, or install it once:\n\n" +
			"  bash        source <(sandbox completion bash)\n" +
			"              sandbox completion bash > /etc/bash_completion.d/sandbox   (needs bash-completion)\n" +
			"  zsh         source <(sandbox completion zsh)\n" +
			"              sandbox completion zsh > \"${fpath[1]}/_sandbox\"   (needs compinit)\n" +
			"  fish        sandbox completion fish | source\n" +
			"              sandbox completion fish > ~/.config/fish/completions/sandbox.fish\n" +
			"  powershell  sandbox completion powershell | Out-String | Invoke-Expression",
		Example:   "  source <(sandbox completion bash)",
		ValidArgs: completionShells,
		Args: func(cmd *cobra.Command, argv []string) error {
			if len(argv) == 1 && !slices.Contains(completionShells, argv[0]) {
				return &Error{Code: CodeUsage, Hint: helpHint(cmd),
					Message: fmt.Sprintf("sandbox completion has no script for %q: it knows %s", argv[0], andList(completionShells))}
			}
			return cobra.ExactArgs(1)(cmd, argv)
		},
		RunE: func(cmd *cobra.Command, argv []string) error {
			if a.json {
				return &Error{Code: CodeUsage, Message: "sandbox completion prints a shell script: --json does not apply"}
			}
			root, w := cmd.Root(), a.env.Stdout
			switch argv[0] {
			case "bash":
				return root.GenBashCompletionV2(w, !noDescriptions)
			case "zsh":
				if noDescriptions {
					return root.GenZshCompletionNoDesc(w)
				}
				return root.GenZshCompletion(w)
			case "fish":
				return root.GenFishCompletion(w, !noDescriptions)
			}
			if noDescriptions {
				return root.GenPowerShellCompletion(w)
			}
			return root.GenPowerShellCompletionWithDesc(w)
		},
	}
	cmd.Flags().BoolVar(&noDescriptions, "no-descriptions", false, "complete without the commands' and flags' descriptions")
	return cmd
}

// completionTimeout bounds the API call behind a completion: a shell waits for it.
const completionTimeout = 3 * time.Second

// completeNames completes a command's NAME, its first argument, with the caller's sandboxes
// that are not destroyed (the API's list); nothing when the API cannot be asked.
func (a *app) completeNames(cmd *cobra.Command, argv []string, prefix string) ([]cobra.Completion, cobra.ShellCompDirective) {
	const done = cobra.ShellCompDirectiveNoFileComp
	if len(argv) > 0 {
		return nil, done
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), completionTimeout)
	defer cancel()
	c, err := a.api(ctx)
	if err != nil {
		return nil, done
	}
	all, err := c.ListAll(ctx, ListOptions{Limit: 200})
	if err != nil {
		return nil, done
	}
	var out []cobra.Completion
	for i := range all {
		if sb := &all[i]; strings.HasPrefix(sb.Name, prefix) {
			out = append(out, cobra.CompletionWithDesc(sb.Name, sb.Status+", "+timeLeft(sb)))
		}
	}
	return out, done
}
