import { loadConfigFile } from '../../config/load-config.js';
import { NftCliApplier } from '../../dataplane/kernel/nft-applier.js';
import { nftFamilyOf } from '../../dataplane/kernel/render-ruleset.js';
import { parseCommandArgs, required, type Command } from '../command.js';

/**
 * `vpnlb stop --config FILE`: removes what the kernel data plane of that configuration created
 * (one nftables table per IKEv2 service: `ip <table>` or `ip6 <table>`) and nothing else. For
 * a balancer that was stopped with `--keep-state` or killed, and is not coming back.
 * Conntrack entries are left to expire: they belong to the kernel, not to vpnlb.
 */
export const stopCommand: Command = {
  name: 'stop',
  summary:
    "remove the nftables tables a configuration's kernel data plane created (after kill or --keep-state)",
  usage: 'vpnlb stop --config FILE',
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, { config: { type: 'string', short: 'c' } });
    const file = required(this, values.config, '--config FILE');
    const config = loadConfigFile(file);
    const nft = new NftCliApplier();
    const seen = new Set<string>();
    let failures = 0;
    for (const s of config.services.ikev2) {
      const family = nftFamilyOf(s);
      const key = `${family} ${s.table}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const r = await nft.deleteTable(family, s.table);
      if (!r.ok) {
        failures++;
        io.err(`${s.name}: could not delete nftables table ${key}: ${r.error}`);
      } else {
        io.out(
          r.value
            ? `${s.name}: deleted nftables table ${key}`
            : `${s.name}: nftables table ${key} not present`,
        );
      }
    }
    if (seen.size === 0) io.out(`${file}: no IKEv2 service, nothing to remove`);
    return failures === 0 ? 0 : 1;
  },
};
