/** Every `vpnlb export --format`, in the order `vpnlb export --help` lists them. */
import { citrixFormat } from './citrix/render-citrix.js';
import type { ExportFormat } from './export-format.js';
import { f5Format } from './f5/render-f5.js';
import { haproxyFormat } from './haproxy/render-haproxy.js';
import { kempFormat } from './kemp/render-kemp.js';
import { nginxFormat } from './nginx/render-nginx.js';

export const EXPORT_FORMATS: readonly ExportFormat[] = [
  f5Format,
  citrixFormat,
  kempFormat,
  haproxyFormat,
  nginxFormat,
];
