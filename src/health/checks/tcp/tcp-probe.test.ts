import {
  closedTcpPort,
  tcpServer,
  unresponsiveTcpListener,
} from '../../../../test/support/loopback-targets.js';
import { describeProbeConformance } from '../../../../test/support/probe-conformance.js';
import { createTcpProbe } from './tcp-probe.js';

describeProbeConformance({
  name: 'tcp probe',
  createProbe: createTcpProbe,
  live: [
    { label: 'IPv4', start: () => tcpServer(4, (s) => s.end()) },
    { label: 'IPv6', start: () => tcpServer(6, (s) => s.end()) },
  ],
  dead: () => closedTcpPort(4),
  silent: () => unresponsiveTcpListener(4),
  skip: { garbage: 'a tcp monitor judges the handshake only: there is no answer to be garbage' },
});
