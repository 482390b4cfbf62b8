"""Remote bases: kustomization entries that pull from the network, vendored beside the
release so renders stay offline (docs/vendor.md, 'Remote bases').

    url        which entries are remote, and what they name (git repository, ref, path; file)
    mirrors    URL prefixes replaced before each fetch (stack.yaml `mirrors:`, STACKCTL_MIRRORS)
    fetch      git (pygit2) and file fetches through the mirrors, each once
    refs       a kustomization's path-like entries, and rewriting one in its text
    localize   a release with its remotes vendored under `_remotes/` and its entries rewritten
    pins       what stackctl.lock records of each remote, and how two locks differ
"""
