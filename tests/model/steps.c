/* The step words of src/lib/model.c, one a line, in the enum's order:
 * test-steps.sh compares them with the model's mtype declaration. */
#include <stdio.h>

#include "model.h"

int main(void)
{
        for (int s = 0; s < VP_STEP_MAX; s++)
                if (puts(vp_step_to_string((enum vp_step)s)) < 0)
                        return 1;
        return 0;
}
