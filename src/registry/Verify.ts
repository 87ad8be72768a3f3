/** The manifest and config checks live in src/verify/Content.ts (every check in one place). */
export { verifyContent } from "../verify/Content.ts"
