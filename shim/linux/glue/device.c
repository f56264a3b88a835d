// SPDX-License-Identifier: BSD-2-Clause
/*
 * The device: /dev/nvmm, one NVMM owner per open file, the ioctls (Linux-encoded, their parameter
 * block copied in and out as the command's direction says), and the module's life.  The node is
 * root's, mode 0600, unless the group parameter names a group that may use NVMM (mode 0660).
 */

#include <linux/cdev.h>
#include <linux/cpuhotplug.h>
#include <linux/device.h>
#include <linux/version.h>

static unsigned int group;
module_param(group, uint, 0444);
MODULE_PARM_DESC(group, "group id owning /dev/nvmm (default 0: root only, mode 0600; else 0660)");

static int nvmm_open(struct inode *inode, struct file *file)
{
	/* Write-only opens get the root owner, which acts on all machines (libnvmm's root mode). */
	if ((file->f_flags & O_ACCMODE) == O_WRONLY) {
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		file->private_data = nvmm_linux_root_owner();
	} else {
		file->private_data = nvmm_linux_owner_alloc(task_tgid_nr(current));
	}
	return 0;
}

static int nvmm_release(struct inode *inode, struct file *file)
{
	nvmm_linux_owner_free(file->private_data);
	return 0;
}

/*
 * NVMM's ioctl arguments are small structures (the largest, NVMM_IOC_CAPABILITY's, is 112 bytes
 * on x86-64), and a vCPU's run loop issues one ioctl per VM exit that reaches userland: they are
 * copied through the stack, not through a slab allocation charged to the caller's memory cgroup
 * each time (under Bochs that was 5 us of an AMD-V I/O exit's 34, and made it slower than
 * KVM's).  A larger _IOC_SIZE, which no NVMM command has, still works through kzalloc().
 */
#define NVMM_IOCTL_STACK_BYTES	256

static long nvmm_unlocked_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	u64 stack[NVMM_IOCTL_STACK_BYTES / sizeof(u64)];
	void __user *uarg = (void __user *)arg;
	unsigned int size = _IOC_SIZE(cmd);
	bool in = _IOC_DIR(cmd) & _IOC_WRITE;
	bool out = _IOC_DIR(cmd) & _IOC_READ;
	void *data = stack;
	int error;

	if (_IOC_TYPE(cmd) != 'N')
		return -ENOTTY;
	if (size > sizeof(stack)) {
		data = kzalloc(size, GFP_KERNEL_ACCOUNT);
		if (!data)
			return -ENOMEM;
	} else if (!in) {
		memset(data, 0, size);
	}
	if (in && copy_from_user(data, uarg, size)) {
		error = EFAULT;
		goto out;
	}
	error = nvmm_linux_ioctl(file->private_data, cmd, data);
	if (!error && out && copy_to_user(uarg, data, size))
		error = EFAULT;
out:
	if (data != stack)
		kfree(data);
	return -error;
}

static const struct file_operations nvmm_fops = {
	.owner = THIS_MODULE,
	.open = nvmm_open,
	.release = nvmm_release,
	.unlocked_ioctl = nvmm_unlocked_ioctl,
	.llseek = noop_llseek,
};

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 2, 0)
static char *nvmm_devnode(const struct device *dev, umode_t *mode, kuid_t *uid, kgid_t *gid)
#else
static char *nvmm_devnode(struct device *dev, umode_t *mode, kuid_t *uid, kgid_t *gid)
#endif
{
	if (mode)
		*mode = group ? 0660 : 0600;
	if (gid && group)
		*gid = make_kgid(&init_user_ns, group);
	return NULL;
}

static const struct device_type nvmm_device_type = {
	.name = "nvmm",
	.devnode = nvmm_devnode,
};

static void nvmm_device_release(struct device *dev)
{
	kfree(dev);
}

static struct class *nvmm_class;
static struct device *nvmm_device;
static struct cdev nvmm_cdev;
static dev_t nvmm_devt;
static int nvmm_cpuhp_state;

static int nvmm_device_create(void)
{
	struct device *dev;
	int error;

	error = alloc_chrdev_region(&nvmm_devt, 0, 1, "nvmm");
	if (error)
		return error;
	cdev_init(&nvmm_cdev, &nvmm_fops);
	error = cdev_add(&nvmm_cdev, nvmm_devt, 1);
	if (error)
		goto unregister;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 4, 0)
	nvmm_class = class_create("nvmm");
#else
	nvmm_class = class_create(THIS_MODULE, "nvmm");
#endif
	if (IS_ERR(nvmm_class)) {
		error = PTR_ERR(nvmm_class);
		goto del;
	}
	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev) {
		error = -ENOMEM;
		goto destroy_class;
	}
	device_initialize(dev);
	dev->devt = nvmm_devt;
	dev->class = nvmm_class;
	dev->type = &nvmm_device_type;
	dev->release = nvmm_device_release;
	error = dev_set_name(dev, "nvmm");
	if (!error)
		error = device_add(dev);
	if (error) {
		put_device(dev);
		goto destroy_class;
	}
	nvmm_device = dev;
	return 0;

destroy_class:
	class_destroy(nvmm_class);
del:
	cdev_del(&nvmm_cdev);
unregister:
	unregister_chrdev_region(nvmm_devt, 1);
	return error;
}

static void nvmm_device_destroy(void)
{
	device_unregister(nvmm_device);
	class_destroy(nvmm_class);
	cdev_del(&nvmm_cdev);
	unregister_chrdev_region(nvmm_devt, 1);
}

/*
 * VMX or SVM already switched on means another hypervisor (kvm_intel, kvm_amd, VirtualBox ...) owns
 * the CPU: Intel SDM Vol. 3C 24.7 (CR4.VMXE) and AMD APM Vol. 2 15.4 (EFER.SVME).
 */
static void nvmm_check_cpu(void *arg)
{
	atomic_t *busy = arg;
	u64 efer;

	if (__read_cr4() & X86_CR4_VMXE)
		atomic_inc(busy);
	else if (!rdmsrl_safe(MSR_EFER, &efer) && (efer & EFER_SVME))
		atomic_inc(busy);
}

/* NVMM switches VMX/SVM on for the CPUs online at load: CPUs may not come or go meanwhile. */
static int nvmm_cpu_online(unsigned int cpu)
{
	pr_warn("nvmm: CPU %u cannot come online while nvmm is loaded\n", cpu);
	return -EBUSY;
}

static int nvmm_cpu_offline(unsigned int cpu)
{
	pr_warn("nvmm: CPU %u cannot go offline while nvmm is loaded\n", cpu);
	return -EBUSY;
}

static int __init nvmm_module_init(void)
{
	atomic_t busy = ATOMIC_INIT(0);
	int error;

	nvmm_linux_cpus_init();
	nvmm_linux_fpu_init();
	error = nvmm_linux_nmi_init();
	if (error)
		return error;

	cpus_read_lock();
	on_each_cpu(nvmm_check_cpu, &busy, 1);
	if (atomic_read(&busy)) {
		cpus_read_unlock();
		nvmm_linux_nmi_fini();
		pr_err("nvmm: VMX/SVM is already in use on %d CPU(s), most likely by kvm_intel or kvm_amd; stop its virtual machines or unload it, then load nvmm again\n",
		       atomic_read(&busy));
		return -EBUSY;
	}
	error = nvmm_linux_init();
	if (error) {
		cpus_read_unlock();
		nvmm_linux_nmi_fini();
		if (error == EOPNOTSUPP)
			pr_err("nvmm: this CPU has no usable VMX (with EPT) or SVM (with NPT)\n");
		return -error;
	}
	error = cpuhp_setup_state_nocalls_cpuslocked(CPUHP_AP_ONLINE_DYN, "nvmm:online",
						     nvmm_cpu_online, nvmm_cpu_offline);
	cpus_read_unlock();
	if (error < 0)
		goto fini;
	nvmm_cpuhp_state = error;

	error = nvmm_device_create();
	if (error)
		goto cpuhp;
	pr_info("nvmm: loaded, backend %s, %u CPU(s)\n", nvmm_linux_backend_name(),
		num_online_cpus());
	return 0;

cpuhp:
	cpuhp_remove_state_nocalls(nvmm_cpuhp_state);
fini:
	nvmm_linux_fini();
	nvmm_linux_nmi_fini();
	return error;
}

static void __exit nvmm_module_exit(void)
{
	nvmm_device_destroy();
	cpuhp_remove_state_nocalls(nvmm_cpuhp_state);
	nvmm_linux_fini();
	nvmm_linux_nmi_fini();
	pr_info("nvmm: unloaded\n");
}

module_init(nvmm_module_init);
module_exit(nvmm_module_exit);

MODULE_DESCRIPTION("NVMM hypervisor (Intel VMX and AMD SVM backends), generated by nvmm-port");
MODULE_LICENSE("Dual BSD/GPL");
MODULE_VERSION(NVMM_MODULE_VERSION);
