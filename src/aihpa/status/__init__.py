"""`aihpa status`: the managed Deployments at a glance (`rows`: what a row says, pure; `render`: how it prints;
`cli`: the command, which lists Deployments and never writes)."""
