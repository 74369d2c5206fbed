rule for_all_empty { strings: $a = "zzzz" condition: for all i in (1..#a) : (false) }
rule for_none_empty { strings: $a = "zzzz" condition: for none i in (1..#a) : (true) }
rule all_of_empty_rng { strings: $a = "zzzz" condition: all of them in (10..5) }
rule for_any_undef { condition: for any i in (0..uint8(1000)) : (true) }
rule for_all_undef { condition: for all i in (0..uint8(1000)) : (true) }
rule n_of_zero { strings: $a = "zzzz" condition: 0 of them }
rule for_all_cond_undef { condition: for all i in (1..2) : (uint8(1000) == 0) }
rule for_none_cond_undef { condition: for none i in (1..2) : (uint8(1000) == 0) }
rule or_undef { condition: uint8(1000) == 0 or uint8(1001) == 0 }
rule not_or_undef { condition: not (uint8(1000) == 0 or uint8(1001) == 0) }
rule str_undef_cmp { condition: not ("a" == "b") }
rule div_zero_runtime { condition: not (filesize \ (filesize - filesize) == 1) }
rule mod_neg { condition: -7 % 3 == -1 }
rule shift_big { condition: (1 << 63) < 0 }
rule float_div { condition: 1 \ 2.0 == 0.5 }
rule int_div_neg { condition: -7 \ 2 == -3 }
rule str_cmp_bytes { condition: "\x80" > "a" }
rule for_rev_range { condition: for any i in (5..3) : (true) }
rule for_neg_range { condition: for any i in (-1..3) : (i == -1) }
rule for_eq_range { condition: for all i in (2..2) : (i == 2) and for any i in (-1..-1) : (i < 0) }
rule in_rev_range { strings: $a = "d" condition: not $a in (3..2) and $a in (0..0) }
