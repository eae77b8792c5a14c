<#
.SYNOPSIS
    RRAS settings for rras3 (198.18.1.12) behind vpnlb, from sstp-offload.yaml.
.DESCRIPTION
    Written by `vpnlb rras`. Checks, and with -Apply makes, what this server needs:
      1. SSTP offload: the front certificate's SHA-256 hash and plain HTTP (aovpn-sstp)
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

# ---- SSTP offload ----
# vpnlb terminates TLS and forwards SSTP in plain HTTP to port 80. SSTP's crypto binding covers
# the hash of the certificate the client saw ([MS-SSTP] 3.3.3), so RRAS must know it:
#   CN=vpn.example.com, expires Dec  1 00:00:00 2027 GMT, SHA-1 thumbprint EE3637B4C96BC78402481069DD3CB8F583981B49.
# Renewing the certificate on the balancer means running `vpnlb rras` and this script again.
$Path = 'HKLM:\SYSTEM\CurrentControlSet\Services\SstpSvc\Parameters'
$Hash = [byte[]](0x69,0xDF,0xBA,0x8F,0x7D,0xE3,0xDB,0xBB,0x5B,0xE6,0xCC,0x87,0xDA,0x68,0xBF,0x1D,0x3E,0xB3,0x95,0x38,0xED,0x9B,0x99,0x63,0x3B,0x2B,0x14,0xC9,0xE1,0x22,0x75,0xB0)
$current = Get-RegistryValue $Path 'SHA256CertificateHash'
$hashDone = ($null -ne $current) -and ([BitConverter]::ToString([byte[]]$current) -eq [BitConverter]::ToString($Hash))
Invoke-Step $hashDone 'SHA256CertificateHash = 69DFBA8F7DE3DBBB5BE6CC87DA68BF1D3EB39538ED9B99633B2B14C9E12275B0' {
    New-ItemProperty -Path $Path -Name 'SHA256CertificateHash' -PropertyType Binary -Value $Hash -Force | Out-Null
}
$current = Get-RegistryValue $Path 'UseHttps'
$httpDone = ($null -ne $current) -and ($current -eq 0)
Invoke-Step $httpDone 'UseHttps = 0 (SSTP in plain HTTP on port 80)' {
    New-ItemProperty -Path $Path -Name 'UseHttps' -PropertyType DWord -Value 0 -Force | Out-Null
}
# RemoteAccess reads both values when it starts.
if (-not ($hashDone -and $httpDone)) {
    Invoke-Step $false 'restart RemoteAccess for the SSTP settings' { Restart-Service -Name RemoteAccess }
}

# ---- Self-test ----
Test-Check ((Get-Service -Name RemoteAccess).Status -eq 'Running') 'RemoteAccess service running'
Test-Check (@(Get-NetTCPConnection -State Listen -LocalPort 80 -ErrorAction SilentlyContinue).Count -gt 0) 'SSTP: listening on TCP 80'

if ($script:Failures -gt 0) { Write-Host "$script:Failures self-test check(s) failed"; exit 1 }
Write-Host 'self-test passed'
