import { Args, Command } from "@effect/cli"
import { Console, Effect } from "effect"

const shell = Args.choice([["bash", "bash"], ["zsh", "zsh"], ["fish", "fish"]] as const, { name: "SHELL" }).pipe(
  Args.withDescription("the shell to complete for: bash, zsh or fish"),
)

/**
 * `als completion SHELL`: the completion script @effect/cli derives from the command tree.
 * The tree is passed lazily because it contains this command.
 */
export const completionCommand = <R, E, A>(root: () => Command.Command<string, R, E, A>) =>
  Command.make("completion", { shell }, ({ shell }) =>
    Effect.gen(function*() {
      const tree = root()
      const lines = shell === "bash"
        ? yield* Command.getBashCompletions(tree, "als")
        : shell === "zsh"
        ? yield* Command.getZshCompletions(tree, "als")
        : yield* Command.getFishCompletions(tree, "als")
      yield* Console.log(lines.join("\n"))
    })).pipe(Command.withDescription(
      "Print a shell completion script for als.\n\n" +
        "Examples:\n" +
        "  als completion bash > /etc/bash_completion.d/als\n" +
        "  als completion zsh > \"${fpath[1]}/_als\"\n" +
        "  als completion fish > ~/.config/fish/completions/als.fish",
    ))
