/* toyos: the kernel API of a fictional OS, for nvmm-port's generator tests. Public domain. */

#ifndef _TOYOS_KERNEL_H_
#define _TOYOS_KERNEL_H_

struct toy_mutex { int owner; };
struct toy_cpu { unsigned int index; };
struct toy_gspace { unsigned long root_pa; void *owner; };
struct toy_proc { int p_pid; };

#define TOY_MAX_CPUS	64
#define TOY_ASSERT(e)	((void)((e) || (toy_panic(#e), 0)))

void	toy_panic(const char *) __attribute__((__noreturn__));
int	toy_log(const char *, ...) __attribute__((__format__(__printf__, 1, 2)));
void	toy_mutex_init(struct toy_mutex *);
void	toy_mutex_lock(struct toy_mutex *);
void	toy_mutex_unlock(struct toy_mutex *);
void	*toy_zalloc(unsigned long);
void	toy_free(void *, unsigned long);
void	*toy_page_zalloc(unsigned long npages);
void	toy_page_free(void *, unsigned long npages);
unsigned int toy_cpu_index(void);
int	toy_pin_thread(void);
void	toy_unpin_thread(int);
void	toy_run_on_all_cpus(void (*)(void *), void *);
int	toy_thread_should_yield(void);
void	*toy_kernel_space(void);
struct toy_gspace *toy_gspace_new(unsigned long, unsigned long);
int	toy_gspace_fill(struct toy_gspace *, unsigned long, int);
void	toy_fpu_enter(void);
void	toy_fpu_leave(void);

/* BSD spellings toyos keeps for ported code. */
struct toy_proc *toy_curproc(void);
#define curproc	(toy_curproc())
int	copyin(const void *, void *, unsigned long);
void	panic(const char *, ...) __attribute__((__noreturn__));

#endif /* _TOYOS_KERNEL_H_ */
