// Sample YARA rules for the runner's cases.
rule sample_ransom_note
{
    meta:
        description = "ransom note dropped by the sample locker"
        severity = "critical"
    strings:
        $a = "YOUR FILES HAVE BEEN ENCRYPTED" nocase
        $b = /send [0-9]+(\.[0-9]+)? BTC/
    condition:
        $a and $b
}

rule sample_webshell
{
    meta:
        severity = "high"
    strings:
        $eval = "eval(base64_decode(" ascii
    condition:
        $eval at 0 or (filesize < 4KB and $eval)
}
