# node-gyp build of the kernel plane's optional native counter reader (Linux: NETLINK_NETFILTER).
# scripts/setup.sh runs build.sh; a failed build only means counters are read with `nft -j list
# counters` (which also fetches every set element: seconds per 65537-slot map on a busy host).
# Warnings are errors (-Wall -Wextra -Werror; -Wunused-parameter undoes node-gyp's default
# -Wno-unused-parameter).
{
  "targets": [
    {
      "target_name": "nft_counters",
      "sources": ["nft_counters.c", "counters_core.c"],
      "cflags": ["-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-Wunused-parameter"],
      "defines": ["NAPI_VERSION=8"],
      "include_dirs": ["../common"],
      "conditions": [
        ["OS!='linux'", { "sources!": ["nft_counters.c", "counters_core.c"], "sources": ["unsupported.c"] }]
      ]
    }
  ]
}
