/**
 * The CLI's one way to report an error: a single line `mixq <cmd>: <message>` on stderr, then exit with
 * the given code — never a stack trace. Commands pass 2 for bad arguments or input (usage errors, and a
 * MixqError where the command treats every MixqError as such) and 1 for failures while running.
 */
import { MixqError } from '../core/errors.ts';

/** The message of a thrown value: a MixqError's or Error's message, else the value as a string. */
export function errorMessage(e: unknown): string {
  return e instanceof MixqError ? e.message : e instanceof Error ? e.message : String(e);
}

/** Exit code for commands that treat every MixqError as bad input: 2 for a MixqError, else 1. */
export function usageExitCode(e: unknown): number {
  return e instanceof MixqError ? 2 : 1;
}

/** Prints `mixq <cmd>: <message>` to stderr and exits with `code`. */
export function failCli(cmd: string, e: unknown, code: number): never {
  process.stderr.write(`mixq ${cmd}: ${errorMessage(e)}\n`);
  process.exit(code);
}
