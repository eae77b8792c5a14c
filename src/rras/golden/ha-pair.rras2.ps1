<#
.SYNOPSIS
    RRAS settings for rras2 (198.18.1.11) behind vpnlb, from ha-pair.yaml.
.DESCRIPTION
    Written by `vpnlb rras`. Checks, and with -Apply makes, what this server needs:
      1. route replies to VPN clients through the balancer (transparent IKEv2: aovpn)
    then a self-test of the server as it is (listening ports, the SSTP certificate, the balancer).
    Without -Apply nothing is changed:
    each step says OK, or WOULD and what it would do. Run it again after -Apply: every step says OK.
    Run it in an elevated PowerShell on the server.
.PARAMETER Apply
    Make the changes (without it: a dry run).
#>
[CmdletBinding()]
param(
    # The balancer's IPv4 address on this server's network: the next hop for replies to VPN clients.
    [string]$Gateway = '198.18.1.1',
    [switch]$Apply
)
Set-StrictMode -Version 3.0
$ErrorActionPreference = 'Stop'
$script:Failures = 0

# Step: report OK, or WOULD (dry run) / CHANGE (with -Apply) and run the change.
function Invoke-Step([bool]$Done, [string]$What, [scriptblock]$Change) {
    if ($Done) { Write-Host "OK      $What"; return }
    if (-not $Apply) { Write-Host "WOULD   $What"; return }
    Write-Host "CHANGE  $What"
    & $Change
}
# Check: one line of the self-test; a failed check makes the script exit 1.
function Test-Check([bool]$Passed, [string]$What) {
    if ($Passed) { Write-Host "PASS    $What" } else { Write-Host "FAIL    $What"; $script:Failures++ }
}

# ---- Route back through the balancer ----
# vpnlb forwards IKEv2 with destination NAT only: this server sees each client's real address and
# answers it directly. Unless the answer goes back through the balancer, it leaves with this
# server's own address instead of the virtual IP and the client drops it (IKE never completes).
# vpnlb status reports such a server ("set the default gateway of ... to ...").
# The default route (0.0.0.0/0) via the balancer: persistent (New-NetRoute writes the active and the persistent store).
$old = @(Get-NetRoute -DestinationPrefix '0.0.0.0/0' -ErrorAction SilentlyContinue)
$done = ($old.Count -eq 1) -and ($old[0].NextHop -eq $Gateway)
Invoke-Step $done "default route 0.0.0.0/0 via $Gateway (now: $(($old | ForEach-Object { $_.NextHop }) -join ', '))" {
    $ifIndex = (Find-NetRoute -RemoteIPAddress $Gateway | Select-Object -First 1).InterfaceIndex
    $old | Remove-NetRoute -Confirm:$false
    Get-NetRoute -DestinationPrefix '0.0.0.0/0' -PolicyStore PersistentStore -ErrorAction SilentlyContinue | Remove-NetRoute -Confirm:$false
    New-NetRoute -DestinationPrefix '0.0.0.0/0' -NextHop $Gateway -InterfaceIndex $ifIndex | Out-Null
}

# ---- Self-test ----
Test-Check ((Get-Service -Name RemoteAccess).Status -eq 'Running') 'RemoteAccess service running'
Test-Check (@(Get-NetUDPEndpoint -LocalPort 500 -ErrorAction SilentlyContinue).Count -gt 0) 'IKEv2: listening on UDP 500'
Test-Check (@(Get-NetUDPEndpoint -LocalPort 4500 -ErrorAction SilentlyContinue).Count -gt 0) 'IKEv2: listening on UDP 4500'
Test-Check (@(Find-NetRoute -RemoteIPAddress $Gateway -ErrorAction SilentlyContinue).Count -gt 0) "the balancer $Gateway is reachable on a connected network"

if ($script:Failures -gt 0) { Write-Host "$script:Failures self-test check(s) failed"; exit 1 }
Write-Host 'self-test passed'
