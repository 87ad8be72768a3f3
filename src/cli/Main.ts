/** The command tree. Each command lives in its own thin file. */
import { Command, ValidationError } from "@effect/cli"
import { Console, Effect } from "effect"
import { ALS_VERSION } from "../version.ts"
import { checkArgv, flagTable } from "./ArgvGuard.ts"
import { colorless, wantsPlain } from "./Colour.ts"
import { helpFor, helpWidth } from "./Help.ts"
import { withStorePolicy } from "./StorePolicy.ts"
import { UsageError } from "../domain/UsageError.ts"
import { completionCommand } from "./CompletionCommand.ts"
import { doctorCommand } from "./DoctorCommand.ts"
import { gcCommand } from "./GcCommand.ts"
import { initCommand } from "./InitCommand.ts"
import { logCommand } from "./LogCommand.ts"
import { lookupCommand } from "./LookupCommand.ts"
import { lsCommand } from "./LsCommand.ts"
import { pullCommand } from "./PullCommand.ts"
import { replayCommand } from "./ReplayCommand.ts"
import { auditCommand } from "./AuditCommand.ts"
import { rmCommand } from "./RmCommand.ts"
import { serveCommand } from "./ServeCommand.ts"

/**
 * `als --help` lists the commands by task. @effect/cli renders subcommands as one flat list,
 * so the root description carries the groups; a registered command missing here is listed
 * under "Other" all the same.
 */
const groups: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]> = [
  ["Getting layers", [
    ["pull", "put an image's layers in the store: registry, OCI layout, archive"],
    ["lookup", "find a layer in the store, else link it from a pool (1: not found)"],
    ["serve", "mount the store for podman (FUSE): pulls on lookup, counts uses"],
  ]],
  ["Inspecting", [
    ["ls", "stored layers: digest, source, size, the images that name them"],
    ["log", "the audit log, event by event (--json for NDJSON)"],
    ["audit", "check the log and the store against each other"],
  ]],
  ["Maintenance", [
    ["rm", "remove an image's :ref view (its layers stay until gc)"],
    ["gc", "remove layers that no ref names and no podman layer uses"],
    ["doctor", "check that podman can use the store; say how to fix what is wrong"],
    ["init", "create a store and print the storage.conf line for podman"],
  ]],
  ["Other", [
    ["completion", "print a shell completion script (bash, zsh, fish)"],
    ["replay", "run a recorded pull again offline and compare"],
  ]],
]

const commandList = (registered: ReadonlySet<string>): string => {
  const known = new Set(groups.flatMap(([, cs]) => cs.map(([n]) => n)))
  const width = Math.max(...[...registered].map((n) => n.length))
  const section = (title: string, cs: ReadonlyArray<readonly [string, string]>) =>
    cs.length === 0 ? [] : [`${title}:`, ...cs.map(([n, what]) => `  ${n.padEnd(width)}  ${what}`.trimEnd())]
  return groups
    .map(([title, cs]) => {
      const present = cs.filter(([n]) => registered.has(n))
      const stray = title === "Other" ? [...registered].filter((n) => !known.has(n)).map((n) => [n, ""] as const) : []
      return section(title, [...present, ...stray]).join("\n")
    })
    .filter((s) => s !== "")
    .join("\n\n")
}

const subcommands = [initCommand, pullCommand, lookupCommand, lsCommand, logCommand, auditCommand, rmCommand, gcCommand, replayCommand, doctorCommand, serveCommand] as const

const rootDescription = (names: ReadonlySet<string>) =>
  "An Additional Layer Store for podman, buildah and CRI-O: fills a store directory with image layers\n" +
  "that containers/storage uses without pulling them.\n\n" +
  `${commandList(names)}\n\n` +
  "Start with: als doctor (is this machine ready?), then als pull IMAGE, then point podman at the store\n" +
  "(als init prints the storage.conf line). Every command takes --root DIR and has --help with an example.\n\n" +
  "Exit status: 0 ok; 1 not found / problems found; 2 usage; 3 registry; 4 layer rejected; 5 store I/O; 6 log damaged;\n" +
  "130 interrupted (SIGINT, Ctrl-C); 143 terminated (SIGTERM). A command on a directory that is not a store exits 2."

const names = new Set<string>([
  ...subcommands.flatMap((c) => [...Command.getNames(c as Command.Command<string, unknown, unknown, unknown>)]),
  "completion",
])

// the completion command completes the whole tree, itself included: it gets it lazily
let tree: Command.Command<string, unknown, unknown, unknown> | undefined

export const als = Command.make("als").pipe(
  Command.withDescription(rootDescription(names)),
  Command.withSubcommands([...(subcommands.map(withStorePolicy) as unknown as typeof subcommands), completionCommand(() => tree!)]),
)
tree = als as Command.Command<string, unknown, unknown, unknown>

const flags = flagTable(als)
const runTree = Command.run(als, { name: "als", version: ALS_VERSION })

/**
 * `argv` as process.argv is laid out (two words, then the arguments): checked for unknown
 * flags and control characters first, then parsed and run; help and output without colour
 * codes when they go to a pipe or NO_COLOR is set.
 */
export const runCli = (argv: ReadonlyArray<string>): ReturnType<typeof runTree> =>
  Effect.suspend(() => {
    const refused = checkArgv(flags, argv.slice(2))
    if (refused !== undefined) return Effect.fail(new UsageError({ message: refused }))
    // help is als's own layout (Help.ts), not @effect/cli's
    // `als` alone: the same help as `als --help`
    const words = argv.length > 2 ? argv.slice(2) : ["--help"]
    const help = helpFor(als, rootDescription(names), ALS_VERSION, words, helpWidth(process.stdout))
    if (help !== undefined) return Effect.sync(() => void process.stdout.write(help))
    // @effect/cli has printed what was wrong; say where the usage is, as podman does
    const command = names.has(argv[2] ?? "") ? `als ${argv[2]}` : "als"
    const run = runTree(argv).pipe(Effect.tapError((e) =>
      ValidationError.isValidationError(e) ? Effect.sync(() => void process.stderr.write(`See '${command} --help'.\n`)) : Effect.void))
    const plainOut = wantsPlain(process.stdout, process.env)
    const plainErr = wantsPlain(process.stderr, process.env)
    return plainOut || plainErr ? Console.consoleWith((c) => Effect.withConsole(run, colorless(c, plainOut, plainErr))) : run
  })
