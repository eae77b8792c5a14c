import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseListSas } from './list-sas.js';
import { parseConntrackUdp, parsePingSummary } from '../topology-ike.js';
import { renderInitiatorConf } from './swanctl-conf.js';

// Shape of `swanctl --list-sas --raw` (strongSwan 5.9.8), one IKE_SA per line.
const RAW =
  'list-sa event {rw {uniqueid=3 version=2 state=ESTABLISHED local-host=198.18.101.2 local-port=4500 local-id=server ' +
  'remote-host=198.18.11.2 remote-port=4500 remote-id=c1 initiator-spi=d8f64e16f43b2ad3 responder-spi=48d9e0febb58a245 ' +
  'nat-remote=yes nat-any=yes encr-alg=AES_CBC encr-keysize=128 remote-vips=[198.19.11.1] child-sas {net-3 {name=net uniqueid=3 ' +
  'state=INSTALLED mode=TUNNEL local-ts=[198.19.100.1/32] remote-ts=[198.19.11.1/32]}}}}\n' +
  'list-sa event {(unnamed) {uniqueid=4 version=2 state=CONNECTING local-host=198.18.101.2 local-port=500 remote-host=198.18.101.1 ' +
  'remote-port=500 initiator-spi=266539b7ecf45f82 responder-spi=1a61ccc99003f8e2 child-sas {}}}\n';

describe('lab parsers', () => {
  it('parses swanctl --list-sas --raw', () => {
    const sas = parseListSas(RAW);
    assert.equal(sas.length, 2);
    assert.equal(sas[0]!.state, 'ESTABLISHED');
    assert.equal(sas[0]!.remoteHost, '198.18.11.2');
    assert.equal(sas[0]!.remoteId, 'c1');
    assert.deepEqual(sas[0]!.remoteVips, ['198.19.11.1']);
    assert.deepEqual(sas[0]!.children[0]!.localTs, ['198.19.100.1/32']);
    assert.equal(sas[1]!.connection, '(unnamed)');
    assert.equal(sas[1]!.state, 'CONNECTING');
    assert.equal(sas[1]!.remotePort, 500);
    assert.deepEqual(parseListSas('garbage {'), []);
  });
  it('parses conntrack -L and ping summaries', () => {
    const ct = parseConntrackUdp(
      'udp      17 27 src=198.18.99.2 dst=198.19.0.1 sport=49568 dport=4500 src=198.18.101.2 dst=198.18.99.2 sport=4500 dport=49568 [ASSURED] mark=0 use=1\nconntrack v1.4.7: 1 flow entries have been shown.\n',
    );
    assert.deepEqual(ct, [
      {
        src: '198.18.99.2',
        dst: '198.19.0.1',
        sport: 49568,
        dport: 4500,
        replySrc: '198.18.101.2',
        replyDst: '198.18.99.2',
        replySport: 4500,
        replyDport: 49568,
      },
    ]);
    assert.deepEqual(parsePingSummary('3 packets transmitted, 2 received, 33% packet loss'), {
      sent: 3,
      received: 2,
    });
    assert.deepEqual(parsePingSummary(''), { sent: 0, received: 0 });
  });
  it('gives each extra connection of a stalled client its own identity (else charon reuses one IKE_SA)', () => {
    const conf = renderInitiatorConf({
      id: 'c1',
      auth: { kind: 'psk', secret: 'x' },
      remote: '198.19.0.1',
      remoteId: 'server',
      remoteTs: ['198.19.100.1/32'],
      vips: ['0.0.0.0'],
      extraConnections: 2,
    });
    assert.match(conf, /id = c1\n/);
    assert.match(conf, /id = c1-extra1\n/);
    assert.match(conf, /id = c1-extra2\n/);
  });
});
