rule f1 { strings: $a = "ab" condition: not ($a at 5) }
rule f2 { strings: $a = "ab" condition: $a at 0 or $a at 4 }
rule f3 { strings: $a = "ab" condition: $a at 0 and #a > 0 }
rule f4 { strings: $a = "ab" condition: $a at 0 }
rule f5 { strings: $a = "ab" condition: $a at (filesize - 2) }
