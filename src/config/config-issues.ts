/**
 * Configuration issues: the bounds on what the loader reads and reports, and how one issue is
 * printed (`file:line:col: severity: path: message`, values quoted and cut, control characters
 * escaped).
 */
import type { ConfigIssue } from './types.js';

/**
 * Bounds on what the loader reads and prints, for hostile or broken files (issue 11: a 50 MB
 * value took 26 s and 2 GB and was echoed whole to stderr; 4 MB of random bytes printed 9.4 MB
 * of errors; a YAML alias bomb ended in a stack trace).
 *
 * A real configuration is a few KiB; one with `MAX_BACKENDS_PER_POOL` backends in several pools
 * stays well under 1 MiB.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Issues reported at most; the rest are summed up in one last line. */
export const MAX_ISSUES = 100;
/** Longest value or YAML message quoted in an issue, in characters. */
export const MAX_QUOTED_LENGTH = 80;
/** Longest message printed for one issue, in characters. */
export const MAX_MESSAGE_LENGTH = 500;
/** YAML aliases resolved at most (each `*alias` expands its anchor: a few nested ones multiply). */
export const MAX_ALIAS_COUNT = 100;

/**
 * `file:line:col: error: path: message`, the format compilers and editors understand. Control
 * characters (C0, DEL, C1, line and paragraph separators, bidirectional overrides) from the file
 * are escaped: a key or value must not reach the administrator's terminal as an escape sequence.
 */
export function formatIssue(source: string, issue: ConfigIssue): string {
  const where = issue.line ? `${source}:${issue.line}:${issue.column ?? 1}` : source;
  const path = issue.path ? `${issue.path}: ` : '';
  // Messages quote values through `quoteValue`; this cut catches any other long interpolation.
  const message =
    issue.message.length <= MAX_MESSAGE_LENGTH
      ? issue.message
      : `${issue.message.slice(0, MAX_MESSAGE_LENGTH)}…`;
  return escapeControl(`${where}: ${issue.severity}: ${path}${message}`);
}

/** C0, DEL, C1, line and paragraph separators, bidirectional marks and overrides. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters escapeControl escapes
const CONTROL_CHARS = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/** Escapes characters that a terminal would interpret, as `\u{…}`. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL_CHARS, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`);
}

/** A value as an issue quotes it: JSON, cut at `MAX_QUOTED_LENGTH` characters with the full length said. */
export function quoteValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return truncate(text);
}

export function truncate(text: string): string {
  return text.length <= MAX_QUOTED_LENGTH
    ? text
    : `${text.slice(0, MAX_QUOTED_LENGTH)}… (${text.length} characters)`;
}

export function tooLarge(size: number): ConfigIssue {
  return {
    severity: 'error',
    path: '',
    message: `the file is ${size} bytes; a configuration may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`,
  };
}

/** The first `MAX_ISSUES` issues, and one line that says how many more there were. */
export function capIssues(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= MAX_ISSUES) return issues;
  const rest = issues.slice(MAX_ISSUES);
  const errors = rest.filter((i) => i.severity === 'error').length;
  return [
    ...issues.slice(0, MAX_ISSUES),
    {
      severity: errors > 0 ? 'error' : 'warning',
      path: '',
      message: `${rest.length} more issue(s) not shown (${errors} error(s)); fix the ones above first`,
    },
  ];
}

export function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}

export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
