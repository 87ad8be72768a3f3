import { Command } from "@effect/cli"
import { Console, Effect } from "effect"
import { renderReport, runDoctor } from "../doctor/Doctor.ts"
import { setExitCode } from "./exit.ts"
import * as opt from "./options.ts"

export const doctorCommand = Command.make("doctor", { root: opt.root, json: opt.json }, (a) =>
  Effect.gen(function*() {
    const report = yield* runDoctor(opt.resolveRoot(a.root))
    yield* Console.log(a.json ? JSON.stringify(report, null, 2) : renderReport(report))
    setExitCode(report.exitCode)
  })).pipe(Command.withDescription(
    "Check that podman can use the store, and say how to fix what is wrong.\n\n" +
      "Checks: the store directory; its filesystem (type, d_type, overlay xattrs, 0/0 whiteouts, a test overlay\n" +
      "mount as root); the FFI syscalls; podman's storage.conf ($CONTAINERS_STORAGE_CONF, ~/.config/containers/,\n" +
      "/etc/containers/: overlay driver, this store listed with :ref); the podman version and which layers it\n" +
      "takes from a store; the event log's checksums and chain.\n" +
      "Exit 0 when no check failed (warnings do not fail: e.g. a store not in storage.conf can still be given\n" +
      "per command); 1 when one did.\n\n" +
      "Options: --root DIR (default: $ALS_ROOT, else /var/lib/als as root), --json (the checks as JSON).\n\n" +
      "Example: als doctor --root /var/lib/als",
  ))
