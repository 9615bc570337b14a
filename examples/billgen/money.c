/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Money: integer minor units, half-up rounding of discounts and taxes in
 * basis points, overflow refused rather than wrapped, and the currency's
 * minor-unit exponent (ISO 4217) for display.
 */
#include <stdio.h>
#include <string.h>

#include "billgen.h"

/* ⌊(a × bp + 5000) / 10000⌋ for a ≥ 0, 0 ≤ bp ≤ 10000: the product needs
   more than 64 bits before the division. */
static long long bp_of(long long a, long long bp)
{
    __int128 p = (__int128)a * bp + 5000;
    return (long long)(p / 10000); /* ≤ a: fits */
}

int bg_line_amounts(long long quantity, long long unit_price,
                    long long discount_bp, long long tax_rate_bp,
                    bg_amounts *out)
{
    long long sub;
    if (__builtin_mul_overflow(quantity, unit_price, &sub))
        return -1;
    long long disc = bp_of(sub, discount_bp);
    long long tax = bp_of(sub - disc, tax_rate_bp);
    long long total;
    if (__builtin_add_overflow(sub - disc, tax, &total))
        return -1;
    out->subtotal = sub;
    out->discount = disc;
    out->tax = tax;
    out->total = total;
    return 0;
}

int bg_amounts_add(bg_amounts *sum, const bg_amounts *add)
{
    bg_amounts r;
    if (__builtin_add_overflow(sum->subtotal, add->subtotal, &r.subtotal) ||
        __builtin_add_overflow(sum->discount, add->discount, &r.discount) ||
        __builtin_add_overflow(sum->tax, add->tax, &r.tax) ||
        __builtin_add_overflow(sum->total, add->total, &r.total))
        return -1;
    *sum = r;
    return 0;
}

/* ISO 4217 currencies whose minor unit is not 1/100. */
static int exponent(const char *cur)
{
    static const char zero[] = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF "
                               "UGX UYI VND VUV XAF XOF XPF";
    static const char three[] = "BHD IQD JOD KWD LYD OMR TND";
    static const char four[] = "CLF UYW";
    if (strlen(cur) != 3)
        return 2;
    if (strstr(zero, cur))
        return 0;
    if (strstr(three, cur))
        return 3;
    if (strstr(four, cur))
        return 4;
    return 2;
}

void bg_money(char *out, size_t cap, long long minor, const char *currency)
{
    int e = exponent(currency);
    unsigned long long a = minor < 0 ? 0ULL - (unsigned long long)minor
                                     : (unsigned long long)minor;
    const char *sign = minor < 0 ? "-" : "";
    if (e == 0) {
        snprintf(out, cap, "%s%llu", sign, a);
        return;
    }
    unsigned long long div = 1;
    for (int i = 0; i < e; i++)
        div *= 10;
    snprintf(out, cap, "%s%llu.%0*llu", sign, a / div, e, a % div);
}
