/**
 * What @effect/cli needs to run (FileSystem, Path, Terminal), and nothing more: the
 * @effect/platform-node barrel would also load its HTTP client and server, sockets, workers and
 * a child-process executor, none of which als uses, at every start.
 */
import { Layer } from "effect"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodePath from "@effect/platform-node/NodePath"
import * as NodeTerminal from "@effect/platform-node/NodeTerminal"

export const cliEnvironment = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer, NodeTerminal.layer)
