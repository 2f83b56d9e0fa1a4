/* The OpenAPI 3 document of /v1, written by hand beside the routes
 * (openapi.json) and checked against them by the tests. */
#include "jobs.h"

extern const char vpd_openapi_text[];

struct json_object *vpd_openapi(void)
{
        return json_tokener_parse(vpd_openapi_text);
}
