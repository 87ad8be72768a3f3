// scripts/gen-man.ts's conversion of help text to troff, on help screens written here: what
// troff would misread is escaped, the generated flags the help hides stay out, and examples and
// exit statuses get their own sections.
import { describe, expect, test } from "bun:test"
import { escapeTroff, listedCommands, parseHelp, renderManPage, stripAnsi } from "../../../scripts/gen-man.ts"

const TOP = `als

als 0.1.0

USAGE

$ als

DESCRIPTION

An Additional Layer Store for podman: fills a store.

Getting layers:
  pull        put every layer of an image in the store
  lookup      find one layer (exit 1: not found)

Exit status: 0 ok; 2 usage.

OPTIONS

--version

  A true or false value.

  Show the version of the application.

  This setting is optional.

COMMANDS

  - pull [--name text] <REF>...  Put every layer…
  - lookup [OPTIONS] <DIGEST>
`

const PULL = `als

als 0.1.0

USAGE

$ pull [--name text] [--tls-verify true | false] <REF>...

DESCRIPTION

Put every layer in the store: lookup → pool → link → pull.
.starts with a dot, 'and a quote \\ and a backslash

  a/b/c   kept as it is

Several REFs: each is tried.
Exit status: 0 ok; 2 usage; 130 interrupted.

Examples:
  als pull --root /var/lib/als alpine:3.19
  als pull oci:./layout:1.0

ARGUMENTS

<REF> 1+

  A user-defined piece of text.

  image reference

  This argument must be repeated at least 1 times.

OPTIONS

--name text

  A user-defined piece of text.

  the name podman pulls

  This setting is optional.

--tls-verify true | false

  One of the following: true, false

  require HTTPS

(-h, --help)

  A true or false value.

  Show the help documentation for a command.

--wizard

  A true or false value.

  Start wizard mode for a command.

--completions sh | bash | fish | zsh

  Generate a completion script for a specific shell.
`

const page = (command: string | undefined, text: string) =>
  renderManPage({
    command,
    help: parseHelp(text),
    summary: command === undefined ? "an Additional Layer Store" : "put every layer of an image in the store",
    version: "0.1.0",
    date: "2026-01-02",
    commands: listedCommands(parseHelp(TOP)),
  })

describe("gen-man", () => {
  test("escapes hyphens, backslashes and non-ASCII, and keeps text lines from reading as requests", () => {
    expect(escapeTroff("--tls-verify")).toBe("\\-\\-tls\\-verify")
    expect(escapeTroff("a\\b")).toBe("a\\eb")
    expect(escapeTroff("lookup → pool…")).toBe("lookup \\[u2192] pool\\[u2026]")
    expect(escapeTroff("bell\x07")).toBe("bell")
    const p = page("pull", PULL)
    expect(p).toContain("\n\\&.starts with a dot, 'and a quote \\e and a backslash\n")
    // no line but the header's comment and the macros starts with a dot or a quote
    for (const line of p.split("\n")) expect(line).not.toMatch(/^'/)
    for (const line of p.split("\n").filter((l) => l.startsWith("."))) expect(line).toMatch(/^\.(\\"|TH|nh|ad|SH|PP|TP|B|br|sp|nf|fi)( |$)/)
  })

  test("a command's page: NAME from its summary, SYNOPSIS as `als pull …`, options bold, boilerplate and hidden flags left out", () => {
    const p = page("pull", PULL)
    expect(p).toMatch(/^\.\\" als-pull\(1\): generated/)
    expect(p).toContain('\n.TH ALS\\-PULL 1 2026\\-01\\-02 "als 0.1.0" "User Commands"\n')
    expect(p).toContain("\n.SH NAME\nals\\-pull \\- put every layer of an image in the store\n")
    expect(p).toContain("\n.SH SYNOPSIS\n.B als pull\n[\\-\\-name text] [\\-\\-tls\\-verify true | false] <REF>...\n")
    expect(p).toContain("\n.TP\n\\fB\\-\\-name\\fR \\fItext\\fR\nthe name podman pulls\n")
    expect(p).toContain("\n.TP\n\\fB\\-\\-tls\\-verify\\fR \\fItrue\\fR | \\fIfalse\\fR\nrequire HTTPS\n")
    expect(p).toContain("\n.TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\n")
    expect(p).toContain("\n.TP\n\\fIREF\\fR \\fI1+\\fR\nimage reference\n.sp\nThis argument must be repeated at least 1 times.\n")
    for (const gone of ["A user\\-defined piece of text", "This setting is optional", "One of the following", "wizard", "completions"]) {
      expect({ gone, present: p.includes(gone) }).toEqual({ gone, present: false })
    }
    // an indented block stays line by line
    expect(p).toContain("\n.nf\na/b/c   kept as it is\n.fi\n")
  })

  test("examples and exit statuses get their own sections; the top page lists every command", () => {
    const p = page("pull", PULL)
    expect(p).toContain("\n.SH EXIT STATUS\n0 ok; 2 usage; 130 interrupted.\n")
    expect(p).toContain("\n.SH EXAMPLES\n.nf\nals pull \\-\\-root /var/lib/als alpine:3.19\nals pull oci:./layout:1.0\n.fi\n")
    expect(p).not.toContain("Examples:")
    expect(p).toContain("Several REFs: each is tried.")
    expect(p).toContain("\n.SH SEE ALSO\n\\fBals\\fR(1),\n")

    expect(listedCommands(parseHelp(TOP))).toEqual([
      { name: "pull", summary: "put every layer of an image in the store" },
      { name: "lookup", summary: "find one layer (exit 1: not found)" },
    ])
    const top = page(undefined, TOP)
    expect(top).toContain("\n.SH SYNOPSIS\n.B als\nCOMMAND [OPTIONS]\n")
    expect(top).toContain("\n.SH COMMANDS\n.TP\n\\fBals pull\\fR\nput every layer of an image in the store\n.br\nSee \\fBals\\-pull\\fR(1).\n")
    expect(top).not.toContain("Put every layer…")
    expect(top).toContain("\\fBals\\-pull\\fR(1),\n\\fBals\\-lookup\\fR(1),\n")
    expect(top).toContain("\n.SH EXIT STATUS\n0 ok; 2 usage.\n")
  })

  test("commands come from COMMANDS, summaries from the description, wrapped or not", () => {
    const wrapped = parseHelp(`als 0.1.0

USAGE

$ als COMMAND [OPTIONS]

DESCRIPTION

Getting layers:
  pull put every layer of an image in the store: registry, oci:DIR,
    docker-archive:FILE
  ls stored layers

COMMANDS

  - ls [OPTIONS]
  - pull [OPTIONS] <REF> [<REF>...]
  - gc [OPTIONS]
`)
    expect(listedCommands(wrapped)).toEqual([
      { name: "ls", summary: "stored layers" },
      { name: "pull", summary: "put every layer of an image in the store: registry, oci:DIR, docker-archive:FILE" },
      { name: "gc", summary: "" },
    ])
    // a usage wrapped to the terminal is still one synopsis
    const p = renderManPage({
      command: "pull",
      help: parseHelp("USAGE\n\n$ als pull [--name text]\n  [--jobs integer] <REF>...\n"),
      summary: "s",
      version: "1",
      date: "2026-01-02",
      commands: [],
    })
    expect(p).toContain("\n.SH SYNOPSIS\n.B als pull\n[\\-\\-name text] [\\-\\-jobs integer] <REF>...\n.SH SEE ALSO")
  })

  test("help without a USAGE section is refused; escape codes are removable", () => {
    expect(() => parseHelp("als\n\nDESCRIPTION\n\nno usage\n")).toThrow(/no USAGE/)
    expect(stripAnsi("\x1b[1mUSAGE\x1b[0m \x1b]8;;http://x\x07link\x1b]8;;\x07")).toBe("USAGE link")
  })
})
