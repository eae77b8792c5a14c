# node-gyp build of the userspace relay's optional XDP flood shedding (Linux: bpf(2), XDP links).
# scripts/setup.sh runs build.sh; a failed build only means `kernelShed: xdp` falls back to the
# nftables table. The eBPF program is assembled by xdp_core.c itself: no BPF compiler is needed.
# Warnings are errors (-Wall -Wextra -Werror; -Wunused-parameter undoes node-gyp's default
# -Wno-unused-parameter).
{
  "targets": [
    {
      "target_name": "xdp_shed",
      "sources": ["xdp_shed.c", "xdp_core.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wunused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["xdp_shed.c", "xdp_core.c"], "sources": ["unsupported.c"] }]
      ]
    }
  ]
}
