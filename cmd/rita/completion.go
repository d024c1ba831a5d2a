package main

import (
	"context"
	"fmt"
)

func (a *cli) completionCommand() {
	var shell string
	c := a.command(a.app, "completion", `Print a shell completion script.

Example:
  source <(rita completion bash)
  rita completion zsh > "${fpath[1]}/_rita"`, func(context.Context) error {
		switch shell {
		case "bash":
			fmt.Fprint(a.stdout, bashCompletion)
		case "zsh":
			fmt.Fprint(a.stdout, zshCompletion)
		}
		return nil
	})
	c.Arg("shell", "bash or zsh").Required().EnumVar(&shell, "bash", "zsh")
}

// The scripts ask rita itself (kingpin's --completion-bash) for the words
// that may come next.
const bashCompletion = `_rita_complete() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	COMPREPLY=($(compgen -W "$(${COMP_WORDS[0]} --completion-bash "${COMP_WORDS[@]:1:$COMP_CWORD-1}" 2>/dev/null)" -- "$cur"))
}
complete -F _rita_complete rita
`

const zshCompletion = `#compdef rita
_rita() {
	local -a opts
	opts=("${(@f)$(${words[1]} --completion-bash "${(@)words[2,$CURRENT-1]}" 2>/dev/null)}")
	_describe 'rita' opts
}
compdef _rita rita
`
