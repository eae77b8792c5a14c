/**
 * Configuration loading: YAML → schema validation → semantic checks → defaults → freeze.
 *
 * Every problem is reported, not just the first, each with its YAML path and line, so that
 * `vpnlb check` can show an administrator the whole list in one run.
 */
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument, visit } from 'yaml';
import { VpnlbError } from '../errors.js';
import {
  capIssues,
  firstLine,
  formatIssue,
  MAX_ALIAS_COUNT,
  MAX_CONFIG_BYTES,
  quoteValue,
  sortIssues,
  tooLarge,
  truncate,
} from './config-issues.js';
import { warningsFor } from './config-warnings.js';
import { checkBgp } from './bgp.js';
import { checkHa, LOCAL_HOST, type HostView } from './ha.js';
import { baseDirOf, deepFreeze, resolve } from './resolve-config.js';
import type { ConfigInput } from './schema.js';
import { describeAjvError, simplifyAjvErrors, suggest, validateSchema } from './schema-errors.js';
import { isObj } from './raw-shape.js';
import { semanticChecks } from './semantic-checks.js';
import type { Config, ConfigIssue } from './types.js';
import { formatPath, locateNode, pointerToPath, type PathSeg } from './yaml-paths.js';

export {
  escapeControl,
  formatIssue,
  MAX_ALIAS_COUNT,
  MAX_CONFIG_BYTES,
  MAX_ISSUES,
  MAX_MESSAGE_LENGTH,
  MAX_QUOTED_LENGTH,
  quoteValue,
} from './config-issues.js';
export { formatPath } from './yaml-paths.js';

/** Thrown by `loadConfigFile` when the file has errors; carries every issue found. */
export class ConfigError extends VpnlbError {
  readonly issues: readonly ConfigIssue[];
  constructor(source: string, issues: readonly ConfigIssue[]) {
    const errors = issues.filter((i) => i.severity === 'error');
    super(
      'VPNLB_CONFIG_INVALID',
      `${source}: ${errors.length} configuration error(s)\n${errors.map((i) => formatIssue(source, i)).join('\n')}`,
      'client',
    );
    this.issues = issues;
  }
}

export interface CheckResult {
  /** The resolved, frozen configuration; absent when there is any error. */
  readonly config?: Config;
  /** Every error and warning, in file order. */
  readonly issues: readonly ConfigIssue[];
}

export { parseDuration } from './duration.js';

/** Reads and checks a file; never throws for problems inside the file (they are issues). */
export function checkConfigFile(path: string): CheckResult {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > MAX_CONFIG_BYTES) return { issues: [tooLarge(size)] };
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return {
      issues: [
        { severity: 'error', path: '', message: `cannot read file: ${(err as Error).message}` },
      ],
    };
  }
  return checkConfigText(text, path);
}

/** Loads a file and returns the frozen configuration, or throws `ConfigError` with every issue. */
export function loadConfigFile(path: string): Config {
  const result = checkConfigFile(path);
  if (!result.config) throw new ConfigError(path, result.issues);
  return result.config;
}

/** Loads configuration text (for embedded configurations and tests). */
export function loadConfigText(text: string, source = '<embedded>'): Config {
  const result = checkConfigText(text, source);
  if (!result.config) throw new ConfigError(source, result.issues);
  return result.config;
}

/** Checks configuration text: YAML syntax, schema, semantics; resolves when error-free. */
export function checkConfigText(
  text: string,
  source = '<embedded>',
  host: HostView = LOCAL_HOST,
): CheckResult {
  if (text.length > MAX_CONFIG_BYTES) return { issues: [tooLarge(Buffer.byteLength(text))] };
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
  const issues: ConfigIssue[] = [];
  const locate = (path: readonly PathSeg[], keyOnly = false) =>
    locateNode(doc, lineCounter, path, keyOnly);
  const add = (
    severity: ConfigIssue['severity'],
    path: readonly PathSeg[],
    message: string,
    keyOnly = false,
  ) => issues.push({ severity, path: formatPath(path), ...locate(path, keyOnly), message });

  for (const e of doc.errors) {
    const pos = lineCounter.linePos(e.pos[0]);
    issues.push({
      severity: 'error',
      path: '',
      line: pos.line,
      column: pos.col,
      message: `YAML: ${truncate(firstLine(e.message))}`,
    });
  }
  for (const w of doc.warnings) {
    const pos = lineCounter.linePos(w.pos[0]);
    issues.push({
      severity: 'warning',
      path: '',
      line: pos.line,
      column: pos.col,
      message: `YAML: ${truncate(firstLine(w.message))}`,
    });
  }
  if (doc.errors.length > 0) return { issues: capIssues(sortIssues(issues)) };

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // The yaml library throws (ReferenceError) when aliases expand beyond maxAliasCount: a
    // "billion laughs" document. An ordinary issue at the first alias, not a stack trace.
    let at: number | undefined;
    visit(doc, {
      Alias: (_k, node) => {
        at = node.range?.[0];
        return visit.BREAK;
      },
    });
    const pos = at === undefined ? undefined : lineCounter.linePos(at);
    issues.push({
      severity: 'error',
      path: '',
      ...(pos ? { line: pos.line, column: pos.col } : {}),
      message: `YAML: aliases expand too far (more than ${MAX_ALIAS_COUNT} resolved): ${truncate(firstLine((err as Error).message))}`,
    });
    return { issues: capIssues(sortIssues(issues)) };
  }
  if (raw === null || raw === undefined) {
    add('error', [], 'the file is empty: a configuration needs at least `pools` and `services`');
    return { issues };
  }
  if (!validateSchema(raw)) {
    for (const e of simplifyAjvErrors(validateSchema.errors ?? [])) {
      const path = pointerToPath(e.instancePath);
      if (e.keyword === 'additionalProperties') {
        const extra = String((e.params as { additionalProperty: string }).additionalProperty);
        add(
          'error',
          [...path, extra],
          `unknown setting ${quoteValue(extra)}${suggest(extra, e)}`,
          true,
        );
      } else if (e.keyword === 'required') {
        const missing = String((e.params as { missingProperty: string }).missingProperty);
        add('error', path, `missing required setting "${missing}"`);
      } else {
        add('error', path, describeAjvError(e));
      }
    }
  }
  semanticChecks(raw, add, baseDirOf(source));
  if (isObj(raw)) checkHa(raw, add, host);
  if (isObj(raw)) checkBgp(raw, add);
  if (issues.some((i) => i.severity === 'error')) return { issues: capIssues(sortIssues(issues)) };

  const config = resolve(raw as ConfigInput, source);
  for (const w of warningsFor(config)) add('warning', w.path, w.message);
  return { config: deepFreeze(config), issues: capIssues(sortIssues(issues)) };
}
