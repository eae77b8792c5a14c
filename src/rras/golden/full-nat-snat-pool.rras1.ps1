<#
.SYNOPSIS
    RRAS settings for rras1 (198.18.1.10) behind vpnlb, from full-nat-snat-pool.yaml.
.DESCRIPTION
    Written by `vpnlb rras`. Checks, and with -Apply makes, what this server needs:
      1. IkeNumEstablishedForInitialQuery = 50000 and an IKEEXT restart (full NAT: aovpn-ike)
    then a self-test of the server as it is (listening ports, the SSTP certificate, the balancer).
    Without -Apply nothing is changed:
    each step says OK, or WOULD and what it would do. Run it again after -Apply: every step says OK.
    Run it in an elevated PowerShell on the server.
.PARAMETER Apply
    Make the changes (without it: a dry run).
#>
[CmdletBinding()]
param(
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
# Registry value, or $null when the key or the value does not exist.
function Get-RegistryValue([string]$Key, [string]$Name) {
    $props = Get-ItemProperty -Path $Key -ErrorAction SilentlyContinue
    if ($null -eq $props) { return $null }
    $property = $props.PSObject.Properties[$Name]
    if ($null -eq $property) { return $null }
    return ,$property.Value
}

# ---- Full NAT: the per-address IKE SA limit ----
# aovpn-ike use nat: full: every client reaches this server from a few balancer addresses, and
# IKEEXT limits the IKE SAs it establishes per source address: new clients then fail with error 809
# while connected ones keep working. Raising the limit is a partial workaround (nat: transparent is
# the fix). Restarting IKEEXT drops this server's IKEv2 tunnels: drain it first
# (vpnlb backend drain rras1), wait for its tunnels to end, run this, then vpnlb backend enable rras1.
$Ike = 'HKLM:\SYSTEM\CurrentControlSet\Services\IKEEXT\Parameters'
$current = Get-RegistryValue $Ike 'IkeNumEstablishedForInitialQuery'
$done = ($null -ne $current) -and ($current -ge 50000)
Invoke-Step $done 'IkeNumEstablishedForInitialQuery = 50000, then restart IKEEXT' {
    New-ItemProperty -Path $Ike -Name 'IkeNumEstablishedForInitialQuery' -PropertyType DWord -Value 50000 -Force | Out-Null
    Restart-Service -Name IKEEXT -Force
}

# ---- Self-test ----
Test-Check ((Get-Service -Name RemoteAccess).Status -eq 'Running') 'RemoteAccess service running'
Test-Check (@(Get-NetUDPEndpoint -LocalPort 500 -ErrorAction SilentlyContinue).Count -gt 0) 'IKEv2: listening on UDP 500'
Test-Check (@(Get-NetUDPEndpoint -LocalPort 4500 -ErrorAction SilentlyContinue).Count -gt 0) 'IKEv2: listening on UDP 4500'

if ($script:Failures -gt 0) { Write-Host "$script:Failures self-test check(s) failed"; exit 1 }
Write-Host 'self-test passed'
