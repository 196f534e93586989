/* SPDX-License-Identifier: Apache-2.0 */
/* test-error.c: terok_error formatting and context wrapping. */
#include <criterion/criterion.h>
#include <criterion/new/assert.h>

#include "error.h"
#include "terok-test.h"

Test(error, set_returns_code_and_formats)
{
    terok_error err = TEROK_ERROR_INIT;

    cr_assert(eq(int, terok_error_set(&err, -ENOENT, "no container '%s'", "x"), -ENOENT));
    cr_assert(eq(str, err.message, "no container 'x'"));
    cr_assert(eq(int, err.code, -ENOENT));
    terok_error_clear(&err);
    cr_assert(err.message == NULL && err.code == 0);
}

Test(error, prefix_adds_context)
{
    terok_error err = TEROK_ERROR_INIT;

    terok_error_set(&err, -EACCES, "permission denied");
    cr_assert(eq(int, terok_error_prefix(&err, "opening '%s'", "/x"), -EACCES));
    cr_assert(eq(str, err.message, "opening '/x': permission denied"));
    terok_error_clear(&err);
}

Test(error, null_error_still_returns_code)
{
    cr_assert(eq(int, terok_error_set(NULL, -EINVAL, "x"), -EINVAL));
    cr_assert(eq(int, terok_error_set(NULL, 0, "x"), -EIO), "0 is never a failure code");
}

Test(error, message_without_text_is_strerror)
{
    terok_error err = {.code = -ENOENT};

    cr_assert(eq(str, (char *)terok_error_message(&err), strerror(ENOENT)));
}
