/* SPDX-License-Identifier: BSD-3-Clause */
/* Status texts and the library version, generated from the map in
   tiercache.h so the three can never disagree. */
#include "internal.h"

const char *tc_strerror(int status)
{
    switch (status) {
#define TC_STRERROR_(name, code, msg)                                         \
    case TC_##name:                                                           \
        return msg;
        TC_STATUS_MAP(TC_STRERROR_)
#undef TC_STRERROR_
    }
    return "unknown status";
}

const char *tc_err_name(int status)
{
    switch (status) {
#define TC_ERR_NAME_(name, code, msg)                                         \
    case TC_##name:                                                           \
        return "TC_" #name;
        TC_STATUS_MAP(TC_ERR_NAME_)
#undef TC_ERR_NAME_
    }
    return "TC_UNKNOWN";
}

#define TC_STR_(x) #x
#define TC_XSTR_(x) TC_STR_(x)

unsigned tc_version(void)
{
    return TC_VERSION_HEX;
}

const char *tc_version_string(void)
{
    return TC_XSTR_(TC_VERSION_MAJOR) "." TC_XSTR_(
        TC_VERSION_MINOR) "." TC_XSTR_(TC_VERSION_PATCH);
}
